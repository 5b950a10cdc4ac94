// The top-k selection of llama.cpp's SparQ op, as the published fork runs it, timed on its own.
//
// Per head call the op builds an S-long vector of (score, index) pairs in freshly allocated
// scratch, then std::nth_element puts the k largest scores first (unsorted). This program times
// exactly that (allocation, fill, select) on one thread, with warm-up and repeats, and prints
// one JSON object per S. With --check it prints the selected indices instead, and with --scores
// the scores it selects from, so that the tests can check the selection against their own top-k.
// With --heads H it selects once from each of H different score vectors (the heads one op call
// of a layer spreads over its threads) and prints each call's time and comparison count: how
// much the selection's work varies from head to head, which the threads' barrier after the op
// turns into waiting for the slowest.
//
// Build: g++ -O3 -march=native -std=c++17 llamacpp_select.cpp -o llamacpp_select
// Run:   llamacpp_select [--check | --scores | --heads H] [--k-divisor D] [--warmup W] [--repeats N] S [S ...]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "llamacpp_common.h"

namespace {

// One head call's selection.
std::vector<Pair> select_top_k(const std::vector<float>& scores, int k) {
    return largest_pairs(scores.data(), static_cast<int>(scores.size()), k);
}

std::vector<float> random_scores(int s, unsigned seed) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> normal;
    std::vector<float> out(s);
    for (auto& x : out) x = normal(gen);
    return out;
}

// Each head's selection from its own scores: the time of one call (allocation, fill, select)
// after warm-up calls on other scores, and, in a separate untimed call, its comparisons.
void per_head(int s, int k, int heads, int warmup) {
    volatile float sink = 0.0f;
    for (int w = 0; w < warmup; ++w) sink = sink + select_top_k(random_scores(s, 7u + w), k)[0].first;
    std::vector<double> times;
    std::vector<long long> comparisons;
    for (int h = 0; h < heads; ++h) {
        const std::vector<float> scores = random_scores(s, 1000003u * (h + 1) + s);
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<Pair> top = select_top_k(scores, k);
        const auto t1 = std::chrono::steady_clock::now();
        sink = sink + top[0].first;
        times.push_back(std::chrono::duration<double>(t1 - t0).count());
        long long count = 0;
        largest_pairs_by(scores.data(), s, k, [&count](const Pair& a, const Pair& b) { ++count; return ranks_before(a, b); });
        comparisons.push_back(count);
    }
    std::printf("{\"S\": %d, \"k\": %d, \"heads\": %d, \"times_s\": [", s, k, heads);
    for (int h = 0; h < heads; ++h) std::printf(h ? ", %.9g" : "%.9g", times[h]);
    std::printf("], \"comparisons\": [");
    for (int h = 0; h < heads; ++h) std::printf(h ? ", %lld" : "%lld", comparisons[h]);
    std::printf("]}\n");
}

int usage() {
    std::fprintf(stderr, "usage: llamacpp_select [--check | --scores | --heads H] [--k-divisor D] [--warmup W] [--repeats N] S [S ...]\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    bool check = false, print_scores = false;
    int k_divisor = 12, warmup = 5, repeats = 41, heads = 0;
    std::vector<int> lengths;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--check")) check = true;
        else if (!std::strcmp(argv[i], "--scores")) print_scores = true;
        else if (!std::strcmp(argv[i], "--k-divisor") && i + 1 < argc) k_divisor = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--repeats") && i + 1 < argc) repeats = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--heads") && i + 1 < argc) heads = std::atoi(argv[++i]);
        else if (std::atoi(argv[i]) > 0) lengths.push_back(std::atoi(argv[i]));
        else return usage();
    }
    if (lengths.empty() || k_divisor < 1 || warmup < 0 || repeats < 1 || heads < 0) return usage();

    for (int s : lengths) {
        const int k = std::max(1, s / k_divisor);
        if (heads) {
            per_head(s, k, heads, warmup);
            continue;
        }
        std::vector<float> scores = random_scores(s, 1234u + s);
        if (print_scores) {
            std::printf("{\"S\": %d, \"scores\": [", s);
            for (int i = 0; i < s; ++i) std::printf(i ? ", %.9g" : "%.9g", scores[i]);
            std::printf("]}\n");
            continue;
        }
        if (check) {
            std::vector<Pair> top = select_top_k(scores, k);
            std::printf("{\"S\": %d, \"k\": %d, \"indices\": [", s, k);
            for (int i = 0; i < k; ++i) std::printf(i ? ", %d" : "%d", top[i].second);
            std::printf("]}\n");
            continue;
        }
        std::vector<double> times;
        volatile float sink = 0.0f;
        for (int rep = 0; rep < warmup + repeats; ++rep) {
            scores[rep % s] += 1e-6f;   // a slightly different input each call
            const auto t0 = std::chrono::steady_clock::now();
            std::vector<Pair> top = select_top_k(scores, k);
            const auto t1 = std::chrono::steady_clock::now();
            sink = sink + top[0].first;
            if (rep >= warmup) times.push_back(std::chrono::duration<double>(t1 - t0).count());
        }
        const double median = quantile(times, 0.5);
        std::printf("{\"S\": %d, \"k\": %d, \"repeats\": %d, \"warmup\": %d, \"median_s\": %.9g, "
                    "\"p10_s\": %.9g, \"p90_s\": %.9g, \"ns_per_element\": %.4f}\n",
                    s, k, repeats, warmup, median, quantile(times, 0.1), quantile(times, 0.9),
                    median / s * 1e9);
    }
    return 0;
}
