// llama.cpp's SparQ attention op for one KV head, as the published fork runs it, timed on one
// thread against the parts the CPU implementation model adds up.
//
// Per head call (K stored twice: component-major K_t beside position-major K and V, all f16):
//   1. top-r of |q| over d_h (std::nth_element);
//   2. step 1: per selected component i, scores[s] += q_i * K_t[i][s] over an S-long float vector;
//   3. top-k of the S scores: (score, index) pairs in fresh scratch, std::nth_element (unsorted);
//   4. exact scores: q . K[j] for the k selected rows, gathered one by one; softmax over k;
//   5. output: sum of p_j V[j] over the k selected rows. No reallocation.
// The program also times the op's parts on their own, on the same thread and cold data: step 1
// (a stream of r runs), the selection, and the 2k rows gathered one by one; and the idle DRAM
// latency (a pointer chase), so that the gathers' rows in flight (latency x rows / time) can be
// read off. Inputs rotate over enough heads that every call reads DRAM. One JSON object per S.
//
// Build: g++ -O3 -march=native -std=c++17 llamacpp_op.cpp -o llamacpp_op
// Run:   llamacpp_op [--check] [--r R] [--k-divisor D] [--warmup W] [--repeats N] [--heads H] S [S ...]

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "llamacpp_common.h"

namespace {

constexpr int kHeadDim = 128;
using f16 = uint16_t;

struct Head {
    std::vector<f16> kt;   // [d_h][S]
    std::vector<f16> k;    // [S][d_h]
    std::vector<f16> v;    // [S][d_h]
};

inline float to_f32(f16 h) { return _cvtsh_ss(h); }

// sum_i q[i] * row[i] over one f16 row of d_h values
inline float dot_row(const float* q, const f16* row) {
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < kHeadDim; i += 8) {
        __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + i)));
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), x, acc);
    }
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_hadd_ps(s, s);
    s = _mm_hadd_ps(s, s);
    return _mm_cvtss_f32(s);
}

// scores[s] += w * run[s] over an f16 run
inline void axpy_run(float w, const f16* run, float* scores, int n) {
    const __m256 wv = _mm256_set1_ps(w);
    int s = 0;
    for (; s + 8 <= n; s += 8) {
        __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(run + s)));
        _mm256_storeu_ps(scores + s, _mm256_fmadd_ps(wv, x, _mm256_loadu_ps(scores + s)));
    }
    for (; s < n; ++s) scores[s] += w * to_f32(run[s]);
}

std::vector<int> top_r(const float* q, int r) {
    float mag[kHeadDim];
    for (int i = 0; i < kHeadDim; ++i) mag[i] = std::fabs(q[i]);
    return largest_indices(mag, kHeadDim, r);
}

std::vector<int> select_top_k(const std::vector<float>& scores, int k) {
    return largest_indices(scores.data(), static_cast<int>(scores.size()), k);
}

// Steps 1-3 for one head: the k rows the approximate scores select.
std::vector<int> step1_rows(const Head& h, const float* q, int seq, int r, int k) {
    const std::vector<int> comps = top_r(q, r);
    std::vector<float> scores(seq, 0.0f);
    for (int c : comps) axpy_run(q[c], h.kt.data() + static_cast<size_t>(c) * seq, scores.data(), seq);
    return select_top_k(scores, k);
}

// The op for one head: writes d_h outputs into out.
void sparq_head(const Head& h, const float* q, int seq, int r, int k, float* out) {
    const std::vector<int> rows = step1_rows(h, q, seq, r, k);
    std::vector<float> p(k);
    float mx = -INFINITY;
    const float scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
    for (int j = 0; j < k; ++j) {
        p[j] = dot_row(q, h.k.data() + static_cast<size_t>(rows[j]) * kHeadDim) * scale;
        mx = std::max(mx, p[j]);
    }
    float sum = 0.0f;
    for (int j = 0; j < k; ++j) sum += (p[j] = std::exp(p[j] - mx));
    __m256 acc[kHeadDim / 8];
    for (auto& a : acc) a = _mm256_setzero_ps();
    for (int j = 0; j < k; ++j) {
        const f16* row = h.v.data() + static_cast<size_t>(rows[j]) * kHeadDim;
        const __m256 w = _mm256_set1_ps(p[j] / sum);
        for (int i = 0; i < kHeadDim / 8; ++i) {
            __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 8 * i)));
            acc[i] = _mm256_fmadd_ps(w, x, acc[i]);
        }
    }
    for (int i = 0; i < kHeadDim / 8; ++i) _mm256_storeu_ps(out + 8 * i, acc[i]);
}

// float64 reference of the same op, for --check
void reference_head(const Head& h, const float* q, int seq, int r, int k, double* out) {
    const std::vector<int> rows = step1_rows(h, q, seq, r, k);
    std::vector<double> p(k);
    double mx = -INFINITY, sum = 0.0;
    for (int j = 0; j < k; ++j) {
        double d = 0.0;
        for (int i = 0; i < kHeadDim; ++i) d += double(q[i]) * to_f32(h.k[static_cast<size_t>(rows[j]) * kHeadDim + i]);
        p[j] = d / std::sqrt(double(kHeadDim));
        mx = std::max(mx, p[j]);
    }
    for (int j = 0; j < k; ++j) sum += (p[j] = std::exp(p[j] - mx));
    for (int i = 0; i < kHeadDim; ++i) {
        double acc = 0.0;
        for (int j = 0; j < k; ++j) acc += p[j] / sum * to_f32(h.v[static_cast<size_t>(rows[j]) * kHeadDim + i]);
        out[i] = acc;
    }
}

Head make_head(int seq, std::mt19937& gen) {
    std::normal_distribution<float> normal;
    Head h;
    h.k.resize(static_cast<size_t>(seq) * kHeadDim);
    h.v.resize(h.k.size());
    h.kt.resize(h.k.size());
    for (auto& x : h.k) x = _cvtss_sh(normal(gen), 0);
    for (auto& x : h.v) x = _cvtss_sh(normal(gen), 0);
    for (int s = 0; s < seq; ++s)
        for (int i = 0; i < kHeadDim; ++i) h.kt[static_cast<size_t>(i) * seq + s] = h.k[static_cast<size_t>(s) * kHeadDim + i];
    return h;
}

// Idle DRAM latency: a dependent pointer chase through 256 MiB in random cache-line order.
double chase_latency(std::mt19937& gen) {
    const size_t lines = (256u << 20) / 64, hops = 2'000'000;
    std::vector<size_t> order(lines), next(lines * 8);
    for (size_t i = 0; i < lines; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), gen);
    for (size_t i = 0; i < lines; ++i) next[order[i] * 8] = order[(i + 1) % lines] * 8;
    size_t at = order[0] * 8;
    for (size_t i = 0; i < hops / 10; ++i) at = next[at];
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < hops; ++i) at = next[at];
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    volatile size_t keep = at;
    (void)keep;
    return t / hops;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int usage() {
    std::fprintf(stderr, "usage: llamacpp_op [--check] [--r R] [--k-divisor D] [--warmup W] [--repeats N] [--heads H] S [S ...]\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    bool check = false;
    int r = 11, k_divisor = 12, warmup = 2, repeats = 9, heads = 0;
    std::vector<int> lengths;
    for (int i = 1; i < argc; ++i) {
        auto next = [&](int& v) { if (i + 1 >= argc) return false; v = std::atoi(argv[++i]); return true; };
        if (!std::strcmp(argv[i], "--check")) check = true;
        else if (!std::strcmp(argv[i], "--r")) { if (!next(r)) return usage(); }
        else if (!std::strcmp(argv[i], "--k-divisor")) { if (!next(k_divisor)) return usage(); }
        else if (!std::strcmp(argv[i], "--warmup")) { if (!next(warmup)) return usage(); }
        else if (!std::strcmp(argv[i], "--repeats")) { if (!next(repeats)) return usage(); }
        else if (!std::strcmp(argv[i], "--heads")) { if (!next(heads)) return usage(); }
        else if (std::atoi(argv[i]) > 0) lengths.push_back(std::atoi(argv[i]));
        else return usage();
    }
    if (lengths.empty() || r < 1 || r > kHeadDim || k_divisor < 1 || warmup < 0 || repeats < 1 || heads < 0)
        return usage();

    std::mt19937 gen(1234);
    for (int seq : lengths) {
        const int k = std::max(1, seq / k_divisor);
        // enough heads that their K, K_t and V (6 bytes x d_h per position) exceed 256 MiB
        const size_t head_bytes = static_cast<size_t>(seq) * kHeadDim * 2 * 3;
        const int n = heads ? heads : std::max(2, static_cast<int>((256u << 20) / head_bytes) + 1);
        std::vector<Head> data;
        for (int h = 0; h < n; ++h) data.push_back(make_head(seq, gen));
        std::vector<float> q(kHeadDim), out(kHeadDim);
        std::normal_distribution<float> normal;
        for (auto& x : q) x = normal(gen);
        if (check) {
            std::vector<double> ref(kHeadDim);
            sparq_head(data[0], q.data(), seq, r, k, out.data());
            reference_head(data[0], q.data(), seq, r, k, ref.data());
            double err = 0.0, mag = 0.0;
            for (int i = 0; i < kHeadDim; ++i) { err = std::max(err, std::fabs(out[i] - ref[i])); mag = std::max(mag, std::fabs(ref[i])); }
            std::printf("{\"S\": %d, \"r\": %d, \"k\": %d, \"max_abs_error\": %.3g, \"max_abs_reference\": %.3g}\n", seq, r, k, err, mag);
            continue;
        }
        std::vector<double> op, stream, select, gather;
        volatile float sink = 0.0f;
        for (int rep = 0; rep < warmup + repeats; ++rep) {
            const Head& h = data[rep % n];
            auto t0 = std::chrono::steady_clock::now();
            sparq_head(h, q.data(), seq, r, k, out.data());
            const double t_op = seconds_since(t0);
            sink = sink + out[0];
            // the op's parts on another head's (cold) data: step 1's r runs of K_t (a stream), the
            // selection, and the k rows of K and of V gathered one by one
            const Head& g = data[(rep + n / 2) % n];
            t0 = std::chrono::steady_clock::now();
            std::vector<float> acc(seq, 0.0f);
            for (int c = 0; c < r; ++c) axpy_run(1.0f, g.kt.data() + static_cast<size_t>(c) * seq, acc.data(), seq);
            const double t_stream = seconds_since(t0);
            t0 = std::chrono::steady_clock::now();
            std::vector<int> top = select_top_k(acc, k);
            const double t_select = seconds_since(t0);
            t0 = std::chrono::steady_clock::now();
            float d = 0.0f;
            for (int j = 0; j < k; ++j) d += dot_row(q.data(), g.k.data() + static_cast<size_t>(top[j]) * kHeadDim);
            for (int j = 0; j < k; ++j) d += dot_row(q.data(), g.v.data() + static_cast<size_t>(top[j]) * kHeadDim);
            const double t_gather = seconds_since(t0);
            sink = sink + d + acc[0];
            if (rep >= warmup) {
                op.push_back(t_op); stream.push_back(t_stream); select.push_back(t_select); gather.push_back(t_gather);
            }
        }
        std::printf("{\"S\": %d, \"r\": %d, \"k\": %d, \"heads\": %d, \"repeats\": %d, "
                    "\"step1_bytes\": %.0f, \"gathered_rows\": %d, \"op_s\": %.9g, \"step1_s\": %.9g, "
                    "\"select_s\": %.9g, \"gather_s\": %.9g, \"dram_latency_s\": %.9g}\n",
                    seq, r, k, n, repeats, double(r) * seq * 2, 2 * k, quantile(op, 0.5), quantile(stream, 0.5),
                    quantile(select, 0.5), quantile(gather, 0.5), chase_latency(gen));
    }
    return 0;
}
