"""Discrete-event model (SimPy) of a device's DRAM path under SparQ access patterns.

* ``config``   : DRAM standards (dram_standards.toml) + a device's ``[dram]`` section -> DramConfig
* ``patterns`` : an Access of a phase -> a representative slice of line/sector requests
* ``engine``   : the SimPy model (in-flight limits, channels, banks with open rows, data buses)
* ``timer``    : SimulatedTimer, the "sim" timing of ``predict --timing sim``

Nothing here imports torch or numba; simpy is imported only when a slice is simulated.
See docs/simulator.md for the method, the slice-and-scale error and the parameters.
"""
