// What the programs that time llama.cpp's SparQ op share: its selection, (value, index) pairs in
// scratch allocated on every call, as the fork does, then std::nth_element for the k largest
// (unsorted), which the op uses for top-r of |q| and for top-k of the approximate scores; and the
// quantiles of a run's timings.
#pragma once

#include <algorithm>
#include <utility>
#include <vector>

using Pair = std::pair<float, int>;

// The fork's order: the larger score first.
inline bool ranks_before(const Pair& a, const Pair& b) { return a.first > b.first; }

// `before(a, b)`: whether a ranks before b (ranks_before, or one that also counts the comparisons
// a call makes).
template <class Before>
inline std::vector<Pair> largest_pairs_by(const float* values, int n, int k, Before before) {
    std::vector<Pair> pairs(n);
    for (int i = 0; i < n; ++i) pairs[i] = {values[i], i};
    std::nth_element(pairs.begin(), pairs.begin() + (k - 1), pairs.end(), before);
    pairs.resize(k);
    return pairs;
}

inline std::vector<Pair> largest_pairs(const float* values, int n, int k) {
    return largest_pairs_by(values, n, k, ranks_before);
}

inline std::vector<int> largest_indices(const float* values, int n, int k) {
    std::vector<int> idx;
    idx.reserve(k);
    for (const Pair& p : largest_pairs(values, n, k)) idx.push_back(p.second);
    return idx;
}

// Linear-interpolation quantile p of the timings.
inline double quantile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    const double x = p * (v.size() - 1);
    const size_t lo = static_cast<size_t>(x), hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (x - lo);
}
