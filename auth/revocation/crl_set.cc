// Grouping of CRLs per CA key, base + delta selection, and the per-certificate lookup.
#include "auth/revocation/crl_set.h"

#include <algorithm>

namespace easedge::auth {
namespace {

constexpr int reason_remove_from_crl = 8;  // CRLReason removeFromCRL: only in delta CRLs, un-revokes

bool same_signer(const Crl& a, const Crl& b) {
  return X509_NAME_cmp(a.issuer_name(), b.issuer_name()) == 0 && EVP_PKEY_eq(a.signer_key(), b.signer_key()) == 1;
}

// Newer by cRLNumber when both carry one, else by thisUpdate.
bool newer(const Crl& a, const Crl& b) {
  if (a.number() && b.number()) return compare_numbers(*a.number(), *b.number()) > 0;
  return a.this_update() > b.this_update();
}

// A delta applies to a base when it was issued after it and its BaseCRLNumber is not newer than it.
bool delta_applies(const Crl& delta, const Crl& base) {
  if (!base.number() || !delta.number()) return false;
  return compare_numbers(*delta.delta_base(), *base.number()) <= 0 &&
         compare_numbers(*delta.number(), *base.number()) > 0;
}

}  // namespace

CrlSet::CrlSet(const std::vector<std::shared_ptr<const Crl>>& crls) {
  for (const auto& crl : crls) {
    if (crl->is_delta()) continue;
    auto it = std::find_if(groups_.begin(), groups_.end(),
                           [&](const Group& g) { return same_signer(*g.base, *crl); });
    if (it == groups_.end())
      groups_.push_back({crl, nullptr});
    else if (newer(*crl, *it->base))
      it->base = crl;
  }
  for (const auto& crl : crls) {
    if (!crl->is_delta()) continue;
    for (auto& g : groups_) {
      if (!same_signer(*g.base, *crl) || !delta_applies(*crl, *g.base)) continue;
      if (!g.delta || newer(*crl, *g.delta)) g.delta = crl;
    }
  }
}

const CrlSet::Group* CrlSet::find(X509* issuer) const {
  const X509_NAME* name = X509_get_subject_name(issuer);
  EVP_PKEY* key = X509_get0_pubkey(issuer);
  for (const auto& g : groups_) {
    if (X509_NAME_cmp(g.base->issuer_name(), name) == 0 && key && EVP_PKEY_eq(g.base->signer_key(), key) == 1)
      return &g;
  }
  return nullptr;
}

bool CrlSet::covers(X509* issuer) const { return find(issuer) != nullptr; }

CrlVerdict CrlSet::lookup(X509* leaf, X509* issuer, SystemTime now, std::chrono::seconds grace) const {
  const Group* g = find(issuer);
  if (!g) return {};
  const std::string serial = serial_bytes(X509_get0_serialNumber(leaf));
  if (g->delta) {
    if (const auto* entry = g->delta->find(serial)) {
      if (entry->reason != reason_remove_from_crl) return {CrlVerdict::Kind::revoked, g->delta.get(), entry};
      // Un-revoked (released from hold) after the base was issued: the base entry no longer counts.
      if (g->delta->expired(now, grace)) return {CrlVerdict::Kind::stale, g->delta.get(), nullptr};
      if (g->base->expired(now, grace)) return {CrlVerdict::Kind::stale, g->base.get(), nullptr};
      return {CrlVerdict::Kind::good, g->delta.get(), nullptr};
    }
  }
  // A revoked entry stays true even in an outdated CRL (certificateHold aside, revocation is final).
  if (const auto* entry = g->base->find(serial))
    return {CrlVerdict::Kind::revoked, g->base.get(), entry};
  if (g->base->expired(now, grace)) return {CrlVerdict::Kind::stale, g->base.get(), nullptr};
  if (g->delta && g->delta->expired(now, grace)) return {CrlVerdict::Kind::stale, g->delta.get(), nullptr};
  return {CrlVerdict::Kind::good, g->base.get(), nullptr};
}

}  // namespace easedge::auth
