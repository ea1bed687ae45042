// The approval of a device's request as one ordered list of steps: the identity to forward, or the Refusal.
#pragma once

#include "auth/client_certificate.h"
#include "auth/kerberos/delegator.h"
#include "auth/revocation/revocation_checker.h"
#include "config/config.h"
#include "eas/policy.h"
#include "eas/query.h"
#include "mapping/account_mapper.h"
#include "proxy/forwarded_headers.h"
#include "proxy/message_framing.h"
#include "proxy/refusal.h"
#include "proxy/runtime.h"

#include <boost/asio/any_io_executor.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/optional/optional.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace easedge::proxy {

// What admission consults: the configuration and policy, and the authorities whose answers may come later.
// A connection takes them from its Runtime (admission_context); tests give fakes.
struct AdmissionContext {
  const config::Config& config;
  const eas::Policy& policy;
  auth::RevocationSource& revocation;
  mapping::AccountMapper* mapper;         // null: the certificate's UPN is the account
};

AdmissionContext admission_context(const Runtime& runtime);

// The refusal a KDC's answer for the chosen Exchange server means (nothing when it holds the token): the
// account refused, the KDC unreachable (503), or easedge's delegation set up wrong (logged as an error).
std::optional<Refusal> refusal_for_token(const auth::kerberos::TokenResult& result);

// What admission learnt about one request. The ActiveSync facts and the account are filled in as they become
// known, so that the log line of a refusal names them too.
struct AdmissionOutcome {
  std::optional<Refusal> refusal;            // empty: admitted, forward with `identity`
  std::string detail;                        // why refused, for the log (never for the device)
  Framing framing;                           // the body length easedge reads from the device and forwards
  bool expect_continue = false;              // the device waits for 100 Continue before its body
  eas::EasRequest eas;                       // what the query says (empty for a request without one)
  std::chrono::seconds upstream_timeout{0};  // this request's wait for Exchange (a Ping is held long)
  ForwardedIdentity identity;                // `user` is set as soon as the account is known
};

// One connection's admissions, one request at a time. The steps run in the order of `steps` in admission.cc;
// a step passes, refuses, or waits for an authority (revocation, directory, KDC) whose answer comes back on
// the connection's executor and resumes the list. Every answer is turned into a Refusal here and nowhere else.
class Admission {
public:
  // Runs when a step starts waiting for an answer: the connection arms its timer (timeouts.authorization)
  // and calls expire() when it fires.
  using Waiting = std::function<void()>;
  // Runs once per request with the outcome, inline or on the executor; never after cancel().
  using Done = std::function<void(AdmissionOutcome&&)>;

  // `certificate` is the handshake's verdict (null when client certificates are off).
  Admission(AdmissionContext context, boost::asio::any_io_executor executor,
            std::shared_ptr<const auth::ClientCertificate> certificate, std::string client_address, Waiting waiting,
            Done done);
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  // Decides the request with this head (and what the parser read of its framing); the head must stay valid
  // until `done`. `owner` is this admission, shared with whatever owns it (the connection, through an
  // aliasing pointer): pending answers keep it alive and are released on the executor.
  void start(const std::shared_ptr<Admission>& owner, const RequestHead& head, bool parser_chunked,
             const boost::optional<std::uint64_t>& parser_length);
  // The answer waited for did not come in time: completes with that step's refusal (503, or 403.13 for
  // revocation), never a 403 for the device's credentials. The late answer is dropped.
  void expire();
  // The device left or the connection closes: a pending answer is dropped and `done` is not called (as
  // Envoy's ext_authz filter cancels its pending check in onDestroy).
  void cancel();

private:
  enum class Progress { next, wait, refused };
  using Step = Progress (Admission::*)();
  static const Step steps[];

  // The steps, in order (see `steps`).
  Progress check_request_shape();
  Progress check_certificate();
  Progress check_revocation();
  Progress check_eas_query();
  Progress map_account();
  Progress check_policy();

  // The answers of the steps that wait, turned into progress.
  Progress on_revocation(const auth::RevocationAnswer& answer);
  Progress on_mapped(const mapping::MapResult& result);

  Progress take_account(const mapping::MappedAccount& account);
  Progress refuse(Refusal reason, std::string detail);
  bool has_valid_certificate() const;
  // A completion for an authority: it runs `on_answer` on the executor if this request still waits for it.
  // `if_late` is the refusal expire() gives.
  template <typename Answer>
  auto answer(Refusal if_late, Progress (Admission::*on_answer)(const Answer&));
  void run();
  void finish();

  AdmissionContext context_;
  boost::asio::any_io_executor executor_;
  std::shared_ptr<const auth::ClientCertificate> certificate_;
  std::string client_address_;
  Waiting waiting_;
  Done done_;
  std::weak_ptr<Admission> owner_;

  // Revocation data generation under which this connection's certificate was last found good.
  std::optional<std::uint64_t> revocation_good_at_;
  std::uint64_t revocation_asked_at_ = 0;  // the generation of the pending check

  // The request being decided.
  std::uint64_t serial_ = 0;  // tells answers for this request from late ones for an earlier step
  std::size_t next_step_ = 0;
  Refusal if_late_ = Refusal::directory_unavailable;
  // On the heap from start() until `done`: an idle connection does not carry it inline.
  struct Decision {
    const RequestHead* head = nullptr;
    bool parser_chunked = false;
    boost::optional<std::uint64_t> parser_length;
    std::string eas_error;  // why the query is malformed; refused after the certificate checks
    // Once the certificate's account is known: its sAMAccountName, for User= (its UPN is outcome.identity.user).
    std::optional<std::string> account_sam;
    AdmissionOutcome outcome;
  };
  std::unique_ptr<Decision> decision_;
};

}  // namespace easedge::proxy
