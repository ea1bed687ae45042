// The embedded directory: an RFC 2849 LDIF file with AD attribute names, loaded once and indexed.
#pragma once

#include "mapping/directory.h"

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace easedge::mapping {

// A problem in the LDIF file, naming the file and the line ("users.ldif:12: ...").
class LdifError : public std::runtime_error {
public:
  LdifError(const std::filesystem::path& file, unsigned long line, const std::string& problem);
  unsigned long line() const { return line_; }

private:
  unsigned long line_;
};

// Immutable after loading, so thread-safe; every lookup is a hash probe. Entries that are groups
// count for membership (memberOf chains, and `member` on groups) but are never returned by search.
class LdifDirectory final : public Directory {
public:
  // Parses with libldap's LDIF reader; throws LdifError on a syntax error, a change record other than
  // an add, an attribute value given by URL, a malformed AD value or a duplicate dn.
  static std::shared_ptr<LdifDirectory> load(const std::filesystem::path& file);

  DirectorySearch search(const DirectoryQuery& query) override;
  DirectoryMembership is_member(const std::string& account_dn, const std::string& group_dn) override;
  bool blocking() const override { return false; }

  // Accounts (user and computer objects) loaded.
  std::size_t size() const { return accounts_.size(); }

private:
  LdifDirectory() = default;

  std::vector<Account> accounts_;
  std::unordered_map<std::string, std::vector<std::size_t>> by_alt_security_identity_;  // normalized value
  std::unordered_map<std::string, std::vector<std::size_t>> by_user_principal_name_;    // lower-case
  std::unordered_map<std::string, std::vector<std::size_t>> by_sam_account_name_;       // lower-case
  std::unordered_map<std::string, std::vector<std::string>> groups_of_;  // normalized dn -> direct group dns
};

}  // namespace easedge::mapping
