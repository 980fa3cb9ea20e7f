// A latency distribution in bounded memory: exact count, mean and max, and
// percentiles from a histogram of logarithmic buckets 0.1% wide (from 100 ns
// to about 28 hours), so a million requests cost what ten do. A percentile
// is its bucket's geometric midpoint: within 0.05% of the exact order
// statistic.
#ifndef SHARDSIM_SIM_METRICS_DIGEST_H_
#define SHARDSIM_SIM_METRICS_DIGEST_H_

#include <cstdint>
#include <map>

#include "sim/proto/report.pb.h"

namespace shardsim::metrics {

class Digest {
 public:
  void Add(double seconds);
  int64_t count() const { return count_; }
  // The smallest bucket value with at least q of the samples at or below it.
  double Quantile(double q) const;
  v1::Distribution ToProto() const;

 private:
  std::map<int64_t, int64_t> buckets_;  // only the buckets in use
  int64_t count_ = 0;
  double sum_ = 0;
  double max_ = 0;
};

}  // namespace shardsim::metrics

#endif  // SHARDSIM_SIM_METRICS_DIGEST_H_
