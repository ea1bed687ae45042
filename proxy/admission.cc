// The approval steps of one request, read top to bottom, and every translation of an answer into a Refusal.
#include "proxy/admission.h"

#include "eas/command.h"
#include "proxy/completion_on_executor.h"
#include "proxy/request_shape.h"

#include <spdlog/spdlog.h>

#include <iterator>

namespace easedge::proxy {

namespace {

Refusal refusal_for(auth::ChainStatus status) {
  switch (status) {
    case auth::ChainStatus::absent: return Refusal::no_client_certificate;
    case auth::ChainStatus::expired: return Refusal::certificate_expired;
    case auth::ChainStatus::not_yet_valid: return Refusal::certificate_not_yet_valid;
    case auth::ChainStatus::wrong_usage: return Refusal::certificate_wrong_usage;
    case auth::ChainStatus::untrusted:
    case auth::ChainStatus::valid: break;
  }
  return Refusal::certificate_untrusted;
}

}  // namespace

// The steps, in the order a request meets them. A device hears about its certificate before anything else
// about its request but the shape of the head.
const Admission::Step Admission::steps[] = {
    &Admission::check_request_shape,  // 400, 404, 405, 431: the head itself; reads the ActiveSync query
    &Admission::check_certificate,    // 403.7, 403.16, 403.17: the handshake's verdict
    &Admission::check_revocation,     // 403.13; may wait for OCSP or a CRL download
    &Admission::check_eas_query,      // 400: a malformed ActiveSync query
    &Admission::map_account,          // 403.16, 503; may wait for the directory
    &Admission::check_policy,         // 403: User= and the device rules
};
// The Kerberos token comes after admission, for the Exchange server a request is sent to (its SPN); what a
// KDC's answer means for the device is decided here too (refusal_for_token).

AdmissionContext admission_context(const Runtime& runtime) {
  return {runtime.config, *runtime.eas_policy, *runtime.revocation, runtime.mapper.get()};
}

Admission::Admission(AdmissionContext context, boost::asio::any_io_executor executor,
                     std::shared_ptr<const auth::ClientCertificate> certificate, std::string client_address,
                     Waiting waiting, Done done)
    : context_(context),
      executor_(std::move(executor)),
      certificate_(std::move(certificate)),
      client_address_(std::move(client_address)),
      waiting_(std::move(waiting)),
      done_(std::move(done)) {}

void Admission::start(const std::shared_ptr<Admission>& owner, const RequestHead& head,
                      bool parser_chunked, const boost::optional<std::uint64_t>& parser_length) {
  owner_ = owner;
  ++serial_;
  next_step_ = 0;
  decision_ = std::make_unique<Decision>();
  decision_->head = &head;
  decision_->parser_chunked = parser_chunked;
  decision_->parser_length = parser_length;
  decision_->outcome.identity.client_address = client_address_;
  run();
}

void Admission::expire() {
  if (!decision_) return;  // decided meanwhile
  ++serial_;
  refuse(if_late_, "no answer within timeouts.authorization_seconds (" +
                       std::to_string(context_.config.timeouts.authorization.count()) + " s)");
  finish();
}

void Admission::cancel() { ++serial_; }

void Admission::run() {
  while (next_step_ < std::size(steps)) {
    switch ((this->*steps[next_step_++])()) {
      case Progress::next: continue;
      case Progress::wait: return waiting_();
      case Progress::refused: return finish();
    }
  }
  finish();
}

void Admission::finish() {
  // Released before `done`, which may start the next request.
  auto decision = std::move(decision_);
  done_(std::move(decision->outcome));
}

template <typename Answer>
auto Admission::answer(Refusal if_late, Progress (Admission::*on_answer)(const Answer&)) {
  if_late_ = if_late;
  return CompletionOnExecutor(executor_, owner_.lock(), [serial = serial_, on_answer](Admission& self, Answer answer) {
    if (serial != self.serial_) return;  // expired or cancelled meanwhile
    if ((self.*on_answer)(answer) == Progress::refused) return self.finish();
    self.run();
  });
}

Admission::Progress Admission::refuse(Refusal reason, std::string detail) {
  decision_->outcome.refusal = reason;
  decision_->outcome.detail = std::move(detail);
  return Progress::refused;
}

bool Admission::has_valid_certificate() const {
  return certificate_ && certificate_->status == auth::ChainStatus::valid;
}

// ---- the steps -------------------------------------------------------------------------------------------

Admission::Progress Admission::check_request_shape() {
  // proxy::, since this member hides the free function it runs.
  auto& d = *decision_;
  auto shape = proxy::check_request_shape(*d.head, d.parser_chunked, d.parser_length,
                                          context_.config.limits.max_request_headers);
  if (shape.refusal) return refuse(*shape.refusal, std::move(shape.detail));
  d.outcome.framing = shape.framing;
  d.outcome.expect_continue = shape.expect_continue;

  // Decoded now so that every log line, refusals included, names command, device and claimed user; a
  // malformed query is refused only after the certificate checks, so a bad certificate is what a device hears.
  auto parsed = eas::parse_query(d.head->method_string(), shape.query);
  if (parsed)
    d.outcome.eas = std::move(*parsed);
  else
    d.eas_error = parsed.error().reason;
  // timeouts.upstream_response is the ceiling; eas.ping_timeout / eas.command_timeout narrow it per command.
  d.outcome.upstream_timeout = std::min(eas::request_timeout(context_.config.eas, d.outcome.eas.command),
                                       context_.config.timeouts.upstream_response);
  return Progress::next;
}

Admission::Progress Admission::check_certificate() {
  auto mode = context_.config.tls.client_certificate;
  if (mode == config::ClientCertificateMode::off) return Progress::next;
  if (certificate_->status == auth::ChainStatus::absent) {
    if (mode == config::ClientCertificateMode::optional) return Progress::next;
    return refuse(Refusal::no_client_certificate, "no client certificate presented");
  }
  if (certificate_->status != auth::ChainStatus::valid)
    return refuse(refusal_for(certificate_->status), certificate_->detail + " (subject " + certificate_->subject + ")");
  return Progress::next;
}

Admission::Progress Admission::check_revocation() {
  if (!has_valid_certificate() || !certificate_->issuer) return Progress::next;
  auto generation = context_.revocation.generation();
  // A good answer holds until the revocation data changes: then an open connection is checked again, so a
  // certificate revoked mid-connection is refused on its next request.
  if (revocation_good_at_ == generation) return Progress::next;
  revocation_asked_at_ = generation;
  context_.revocation.async_check(certificate_->leaf.get(), certificate_->issuer.get(),
                                  answer(Refusal::revocation_unavailable, &Admission::on_revocation));
  return Progress::wait;
}

Admission::Progress Admission::on_revocation(const auth::RevocationAnswer& answer) {
  if (answer.status == auth::RevocationStatus::revoked) return refuse(Refusal::certificate_revoked, answer.reason);
  if (!answer.admits()) return refuse(Refusal::revocation_unavailable, answer.reason);
  if (answer.status == auth::RevocationStatus::unavailable)
    spdlog::warn("{}: revocation status unknown for {}, allowed by tls.revocation.on_unavailable: {}",
                 client_address_, certificate_->subject, answer.reason);
  if (answer.status == auth::RevocationStatus::good)
    revocation_good_at_ = revocation_asked_at_;
  else
    revocation_good_at_.reset();
  return Progress::next;
}

Admission::Progress Admission::check_eas_query() {
  if (!decision_->eas_error.empty()) return refuse(Refusal::malformed_eas_query, std::move(decision_->eas_error));
  return Progress::next;
}

Admission::Progress Admission::map_account() {
  if (!has_valid_certificate()) return Progress::next;  // no account: the policy decides what that allows
  decision_->outcome.identity.certificate = certificate_.get();
  if (!context_.mapper) {
    if (certificate_->upn.empty())
      return refuse(Refusal::certificate_unmappable, "certificate has no UPN (SAN otherName 1.3.6.1.4.1.311.20.2.3)");
    return take_account(mapping::MappedAccount{.user_principal_name = certificate_->upn});
  }
  context_.mapper->map(mapping::CertificateRef{certificate_->leaf, certificate_->issuer},
                       answer(Refusal::directory_unavailable, &Admission::on_mapped));
  return Progress::wait;
}

Admission::Progress Admission::on_mapped(const mapping::MapResult& result) {
  switch (result.status) {
    case mapping::MapStatus::mapped:
      return take_account(*result.account);
    case mapping::MapStatus::directory_unavailable:
      return refuse(Refusal::directory_unavailable, result.reason);
    case mapping::MapStatus::not_mapped:
      break;
  }
  return refuse(Refusal::certificate_unmappable, result.reason);
}

Admission::Progress Admission::take_account(const mapping::MappedAccount& account) {
  if (!is_safe_header_value(account.user_principal_name))
    return refuse(Refusal::certificate_unmappable, "account name contains control bytes");
  auto& d = *decision_;
  d.account_sam = account.sam_account_name;
  d.outcome.identity.user = account.user_principal_name;
  // The name in upstream.identity_format, e.g. SOGo's uid (issue 17)
  d.outcome.identity.forwarded_user = forwarded_user_name(account, context_.config.upstream.identity_format);
  if (d.outcome.identity.forwarded_user.empty())
    return refuse(Refusal::certificate_unmappable, "the account has no usable name for upstream.identity_format");
  return Progress::next;
}

Admission::Progress Admission::check_policy() {
  std::optional<eas::AccountNames> names;
  if (const auto& sam = decision_->account_sam) names = eas::AccountNames{decision_->outcome.identity.user, *sam};
  auto decision = context_.policy.evaluate(decision_->outcome.eas, names);
  if (decision) return Progress::next;
  const auto& denial = decision.error();
  auto reason = denial.reason == eas::PolicyRefusal::user_mismatch ? Refusal::user_mismatch : Refusal::device_blocked;
  return refuse(reason, denial.text);
}

std::optional<Refusal> refusal_for_token(const auth::kerberos::TokenResult& result) {
  if (result) return std::nullopt;
  switch (result.error().kind) {
    case auth::kerberos::FailureKind::user_refused:
      return Refusal::account_refused_by_kdc;
    case auth::kerberos::FailureKind::kdc_unavailable:
      return Refusal::kdc_unavailable;
    case auth::kerberos::FailureKind::setup_error:
      break;
  }
  spdlog::error("Kerberos delegation failed: {}", result.error().message);
  return Refusal::delegation_misconfigured;
}

}  // namespace easedge::proxy
