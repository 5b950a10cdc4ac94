// The selection of llama.cpp's SparQ op, shared by the programs that time it: (value, index)
// pairs in scratch allocated on every call, as the fork does, then std::nth_element for the k
// largest (unsorted). The op uses it for top-r of |q| and for top-k of the approximate scores.
#pragma once

#include <algorithm>
#include <utility>
#include <vector>

using Pair = std::pair<float, int>;

inline std::vector<Pair> largest_pairs(const float* values, int n, int k) {
    std::vector<Pair> pairs(n);
    for (int i = 0; i < n; ++i) pairs[i] = {values[i], i};
    std::nth_element(pairs.begin(), pairs.begin() + (k - 1), pairs.end(),
                     [](const Pair& a, const Pair& b) { return a.first > b.first; });
    pairs.resize(k);
    return pairs;
}

inline std::vector<int> largest_indices(const float* values, int n, int k) {
    std::vector<int> idx;
    idx.reserve(k);
    for (const Pair& p : largest_pairs(values, n, k)) idx.push_back(p.second);
    return idx;
}
