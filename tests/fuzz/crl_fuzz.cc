// libFuzzer target: bytes fetched from a CRL distribution point or read from a CRL file, through Crl::parse
// (PEM or DER), the signature check against the CA, and the lookups that follow: CrlSet's verdict for a fixed
// device certificate (beside a fixed base CRL, which a fuzzed delta may apply to) and every accessor of the CRL.
#include "auth/revocation/crl_set.h"
#include "tests/fuzz/revocation_fuzz_pki.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using namespace easedge::auth;

void check(bool invariant) {
  if (!invariant) std::abort();
}

struct Pki {
  std::vector<OwnedX509> cas;
  OwnedX509 leaf = easedge::fuzz::pem_certificate(easedge::fuzz::leaf_pem);
  std::shared_ptr<Crl> base;
  Pki() {
    cas.push_back(easedge::fuzz::pem_certificate(easedge::fuzz::ca_pem));
    auto parsed = Crl::parse(easedge::fuzz::crl_pem, "base");
    check(cas.back() && leaf && parsed && (*parsed)->verify(cas).has_value());
    base = *parsed;
  }
};

// Only a verified CRL gets into a snapshot: look the device up the way the revocation checker does.
void look_up(const std::shared_ptr<Crl>& crl, const Pki& pki) {
  X509* ca = pki.cas.front().get();
  CrlSet set({pki.base, crl});
  check(set.covers(ca));
  const auto now = std::chrono::system_clock::now();
  for (auto at : {now, now + std::chrono::hours(24 * 365 * 50)}) {
    CrlVerdict verdict = set.lookup(pki.leaf.get(), ca, at, std::chrono::hours(24));
    check((verdict.kind == CrlVerdict::Kind::revoked) == (verdict.entry != nullptr));
  }
}

void exercise(const std::shared_ptr<Crl>& crl, const Pki& pki) {
  if (crl->verify(pki.cas)) {
    check(crl->signer_key() != nullptr);
    look_up(crl, pki);
  }
  (void)format_time(crl->this_update());
  if (auto next = crl->next_update()) (void)format_time(*next);
  (void)crl->expired(std::chrono::system_clock::now(), std::chrono::hours(24));
  if (crl->number() && crl->delta_base()) (void)compare_numbers(*crl->number(), *crl->delta_base());
  check(crl->is_delta() == crl->delta_base().has_value());
  for (const auto& url : crl->delta_urls()) check(url.starts_with("http://"));
  for (const auto& entry : crl->entries()) {
    // The index is sorted, so every entry is found by its own serial.
    const RevokedEntry* found = crl->find(entry.serial);
    check(found != nullptr && found->serial == entry.serial);
    check(entry.serial.empty() || entry.serial.front() != '\0');
    check(serial_hex(entry.serial).size() == std::max<std::size_t>(2, entry.serial.size() * 2));
    (void)crl_reason_text(entry.reason);
    (void)format_time(entry.revoked_at);
  }
  (void)crl->find(std::string("\x10\x00", 2));  // the fixed device certificate's serial
  (void)crl->find({});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  static const Pki pki;
  auto parsed = Crl::parse(bytes, "fuzz");
  check(parsed ? *parsed != nullptr : !parsed.error().empty());
  if (parsed) exercise(*parsed, pki);
  return 0;
}
