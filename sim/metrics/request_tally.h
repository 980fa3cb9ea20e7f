// What every serving driver counts of its requests, and the ServeReport
// fields that follow from it: requests in, refused (the first few named) and
// completed; the span from the first arrival to the last finish; tokens;
// TTFT, TPOT, inter-token latency, end-to-end and queueing delay as digests
// (bounded memory); and the requests that met the SLO, for goodput.
//
// One class so that plain `serve` and the prefill/decode pools driver count
// alike: a request is judged against the SLO here and nowhere else.
#ifndef SHARDSIM_SIM_METRICS_REQUEST_TALLY_H_
#define SHARDSIM_SIM_METRICS_REQUEST_TALLY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "sim/metrics/digest.h"
#include "sim/proto/report.pb.h"
#include "sim/proto/serving.pb.h"

namespace shardsim::metrics {

// The times of one finished request, all on the simulation clock.
struct FinishedRequest {
  double arrival_s = 0;
  double first_scheduled_s = 0;  // its first step began (queueing ends)
  double first_token_s = 0;      // the client has its first token
  double finished_s = 0;         // the client has its last token
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
};

class RequestTally {
 public:
  // Refusals named in the report; the rest are only counted.
  static constexpr int kRefusalsNamed = 5;

  explicit RequestTally(const v1::Slo& slo) : slo_(slo) {}

  // A request arrived (the first one starts the span).
  void Arrived(double arrival_s);
  // A request that can never run; `why` names it (kept for the first few).
  void Refused(const std::string& why);
  // A gap between two tokens of one request, as its client sees them.
  void TokenGap(double seconds) { itl_.Add(seconds); }
  // A request finished: its latencies, and whether it met every SLO target
  // (TPOT is judged only for requests with more than one output token).
  void Finished(const FinishedRequest& r);

  int64_t requests() const { return requests_; }
  int64_t completed() const { return completed_; }
  int64_t refused() const { return refused_; }
  // From the first arrival to the last finish; 0 before a request finished.
  double span_s() const { return completed_ > 0 ? last_finish_s_ - first_arrival_s_ : 0; }

  // Sets requests, completed, refused, span, tokens and their rates (per GPU
  // over `num_gpus`), the five distributions, SLO met and attainment,
  // goodput and the named refusals.
  void Fill(int num_gpus, v1::ServeReport* report) const;

 private:
  v1::Slo slo_;
  int64_t requests_ = 0;
  int64_t refused_ = 0;
  std::vector<std::string> refusals_;
  int64_t completed_ = 0;
  double first_arrival_s_ = 0;
  double last_finish_s_ = 0;
  int64_t input_tokens_ = 0;
  int64_t output_tokens_ = 0;
  int64_t slo_met_ = 0;
  Digest ttft_, tpot_, itl_, e2e_, queue_;
};

}  // namespace shardsim::metrics

#endif  // SHARDSIM_SIM_METRICS_REQUEST_TALLY_H_
