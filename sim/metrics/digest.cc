#include "sim/metrics/digest.h"

#include <algorithm>
#include <cmath>

namespace shardsim::metrics {
namespace {

constexpr double kSmallest = 1e-7;  // seconds; anything below counts here
constexpr double kRatio = 1.001;    // bucket width

int64_t BucketOf(double seconds) {
  if (!(seconds > kSmallest)) return 0;
  return static_cast<int64_t>(std::floor(std::log(seconds / kSmallest) / std::log(kRatio))) + 1;
}

// The geometric middle of a bucket.
double ValueOf(int64_t bucket) {
  if (bucket == 0) return kSmallest;
  return kSmallest * std::pow(kRatio, static_cast<double>(bucket) - 0.5);
}

}  // namespace

void Digest::Add(double seconds) {
  ++buckets_[BucketOf(seconds)];
  ++count_;
  sum_ += seconds;
  max_ = std::max(max_, seconds);
}

double Digest::Quantile(double q) const {
  if (count_ == 0) return 0;
  const double target = q * static_cast<double>(count_);
  int64_t seen = 0;
  for (const auto& [bucket, n] : buckets_) {
    seen += n;
    if (static_cast<double>(seen) >= target) return std::min(ValueOf(bucket), max_);
  }
  return max_;
}

v1::Distribution Digest::ToProto() const {
  v1::Distribution d;
  d.set_count(count_);
  if (count_ == 0) return d;
  d.set_mean_s(sum_ / static_cast<double>(count_));
  d.set_p50_s(Quantile(0.50));
  d.set_p90_s(Quantile(0.90));
  d.set_p99_s(Quantile(0.99));
  d.set_max_s(max_);
  return d;
}

}  // namespace shardsim::metrics
