#include "sim/metrics/request_tally.h"

#include <algorithm>

namespace shardsim::metrics {

void RequestTally::Arrived(double arrival_s) {
  if (requests_ == 0) first_arrival_s_ = arrival_s;
  ++requests_;
}

void RequestTally::Refused(const std::string& why) {
  ++refused_;
  if (refused_ <= kRefusalsNamed) refusals_.push_back(why);
}

void RequestTally::Finished(const FinishedRequest& r) {
  ++completed_;
  last_finish_s_ = std::max(last_finish_s_, r.finished_s);
  input_tokens_ += r.prompt_tokens;
  output_tokens_ += r.output_tokens;
  const double ttft = r.first_token_s - r.arrival_s;
  const double e2e = r.finished_s - r.arrival_s;
  ttft_.Add(ttft);
  e2e_.Add(e2e);
  queue_.Add(r.first_scheduled_s - r.arrival_s);
  // A one-token answer has no time per output token: it is not a zero.
  double tpot = 0;
  if (r.output_tokens > 1) {
    tpot = (r.finished_s - r.first_token_s) / static_cast<double>(r.output_tokens - 1);
    tpot_.Add(tpot);
  }
  // An unset target (0) is met by every request.
  if ((slo_.ttft_s() == 0 || ttft <= slo_.ttft_s()) &&
      (slo_.tpot_s() == 0 || tpot <= slo_.tpot_s()) && (slo_.e2e_s() == 0 || e2e <= slo_.e2e_s())) {
    ++slo_met_;
  }
}

void RequestTally::Fill(int num_gpus, v1::ServeReport* report) const {
  report->set_requests(requests_);
  report->set_completed(completed_);
  report->set_refused(refused_);
  const double span = span_s();
  report->set_span_s(span);
  report->set_input_tokens(input_tokens_);
  report->set_output_tokens(output_tokens_);
  if (span > 0) {
    report->set_requests_per_s(static_cast<double>(completed_) / span);
    report->set_input_tokens_per_s(static_cast<double>(input_tokens_) / span);
    report->set_output_tokens_per_s(static_cast<double>(output_tokens_) / span);
    report->set_output_tokens_per_s_per_gpu(report->output_tokens_per_s() / num_gpus);
    report->set_goodput_requests_per_s(static_cast<double>(slo_met_) / span);
  }
  *report->mutable_ttft() = ttft_.ToProto();
  *report->mutable_tpot() = tpot_.ToProto();
  *report->mutable_itl() = itl_.ToProto();
  *report->mutable_e2e() = e2e_.ToProto();
  *report->mutable_queue() = queue_.ToProto();
  report->set_slo_met(slo_met_);
  if (completed_ > 0) {
    report->set_slo_attainment(static_cast<double>(slo_met_) / static_cast<double>(completed_));
  }
  for (const std::string& refusal : refusals_) report->add_refused_requests(refusal);
}

}  // namespace shardsim::metrics
