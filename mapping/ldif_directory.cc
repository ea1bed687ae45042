#include "mapping/ldif_directory.h"

#include "mapping/certificate_bindings.h"

#include <ldap.h>
#include <cstdio>  // ldif.h needs FILE
#include <ldif.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <cstring>
#include <unordered_set>

namespace easedge::mapping {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// RFC 4512 attribute description: a name (letter, then letters/digits/hyphens) or a numeric OID,
// with ";option"s.
bool valid_attribute_description(std::string_view text) {
  if (text.empty()) return false;
  bool numeric = std::isdigit(static_cast<unsigned char>(text[0])) != 0;
  std::size_t i = 0;
  for (; i < text.size() && text[i] != ';'; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    bool ok = numeric ? (std::isdigit(c) || c == '.') : (std::isalnum(c) || c == '-');
    if (!ok || (!numeric && i == 0 && !std::isalpha(c))) return false;
  }
  while (i < text.size()) {  // at a ';'
    std::size_t start = ++i;
    while (i < text.size() && text[i] != ';' && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '-')) ++i;
    if (i == start || (i < text.size() && text[i] != ';')) return false;
  }
  return true;
}

bool is_named(std::string_view description, std::string_view name) {
  return lower(description.substr(0, description.find(';'))) == lower(name);
}

// One attribute line of a record, decoded by libldap (base64 for "::").
struct Line {
  std::string type;
  std::string value;
  unsigned long number = 0;
};

struct LdifFile {
  explicit LdifFile(const std::filesystem::path& path) : handle(ldif_open(path.c_str(), "r")) {}
  ~LdifFile() {
    if (handle) ldif_close(handle);
    ber_memfree(buffer);
  }
  LDIFFP* handle;
  char* buffer = nullptr;
  int buffer_size = 0;
};

// Splits one record (as ldif_read_record returns it) into decoded lines with their line numbers.
std::vector<Line> lines_of(const std::filesystem::path& file, char* record, unsigned long first_line) {
  std::vector<Line> lines;
  const std::string original(record);  // ldif_getline keeps offsets, so newlines before a line give its number
  char* next = record;
  while (char* text = ldif_getline(&next)) {
    auto offset = static_cast<std::size_t>(text - record);
    unsigned long number = first_line + static_cast<unsigned long>(
                                            std::count(original.begin(), original.begin() + offset, '\n'));
    std::string_view view(text);
    auto colon = view.find(':');
    if (colon == std::string_view::npos) throw LdifError(file, number, "expected 'attribute: value'");
    if (!valid_attribute_description(view.substr(0, colon)))
      throw LdifError(file, number, "invalid attribute name '" + std::string(view.substr(0, colon)) + "'");
    if (view.substr(colon + 1).starts_with("<"))
      throw LdifError(file, number, "attribute values by URL (':<') are not allowed");
    struct berval type {};
    struct berval value {};
    int free_value = 0;
    if (ldif_parse_line2(text, &type, &value, &free_value) != 0)
      throw LdifError(file, number, "invalid value (bad base64?)");
    lines.push_back({std::string(type.bv_val, type.bv_len), std::string(value.bv_val ? value.bv_val : "", value.bv_len),
                     number});
    if (free_value) ber_memfree(value.bv_val);
  }
  return lines;
}

}  // namespace

LdifError::LdifError(const std::filesystem::path& file, unsigned long line, const std::string& problem)
    : std::runtime_error(file.string() + ":" + std::to_string(line) + ": " + problem), line_(line) {}

std::shared_ptr<LdifDirectory> LdifDirectory::load(const std::filesystem::path& file) {
  LdifFile ldif(file);
  if (!ldif.handle) throw LdifError(file, 0, "cannot open the file");
  std::shared_ptr<LdifDirectory> directory(new LdifDirectory);
  std::unordered_set<std::string> dns;
  unsigned long line_number = 0;
  bool first_record = true;
  int rc = 0;
  while ((rc = ldif_read_record(ldif.handle, &line_number, &ldif.buffer, &ldif.buffer_size)) > 0) {
    // libldap can report a record without filling the buffer (ldif_fuzz found one after a version-like first
    // line and a comment): there is nothing in it to read.
    if (ldif.buffer == nullptr) continue;
    // line_number is now the last line read: the blank line ending the record, or its own last line at EOF.
    auto physical = static_cast<unsigned long>(std::count(ldif.buffer, ldif.buffer + std::strlen(ldif.buffer), '\n'));
    bool at_eof = std::feof(ldif.handle->fp) != 0;
    unsigned long first_line = line_number - physical + (at_eof ? 1 : 0);
    auto lines = lines_of(file, ldif.buffer, first_line);
    if (first_record && !lines.empty() && is_named(lines.front().type, "version")) {
      if (lines.front().value != "1") throw LdifError(file, lines.front().number, "only LDIF version 1 is supported");
      lines.erase(lines.begin());
    }
    first_record = false;
    if (lines.empty()) continue;
    if (!is_named(lines.front().type, "dn"))
      throw LdifError(file, lines.front().number, "a record must start with 'dn:'");

    Account account;
    account.dn = lines.front().value;
    bool is_account = false;
    std::vector<std::string> groups;   // memberOf of this entry
    std::vector<std::string> members;  // member of this entry (when it is a group)
    for (auto it = lines.begin() + 1; it != lines.end(); ++it) {
      if (is_named(it->type, "changetype")) {
        if (lower(it->value) != "add")
          throw LdifError(file, it->number, "only entries (changetype: add) are allowed, not '" + it->value + "'");
      } else if (is_named(it->type, "control") || is_named(it->type, "dn")) {
        throw LdifError(file, it->number, "'" + it->type + ":' is not allowed inside an entry");
      } else if (is_named(it->type, "objectClass")) {
        auto cls = lower(it->value);
        is_account = is_account || std::any_of(std::begin(account_object_classes), std::end(account_object_classes),
                                               [&](const char* c) { return cls == c; });
      } else if (is_named(it->type, "memberOf")) {
        groups.push_back(normalize_dn(it->value));
      } else if (is_named(it->type, "member")) {
        members.push_back(normalize_dn(it->value));
      } else if (auto problem = set_account_attribute(account, it->type, it->value); !problem.empty()) {
        throw LdifError(file, it->number, problem);
      }
    }
    auto dn = normalize_dn(account.dn);
    if (!dns.insert(dn).second) throw LdifError(file, lines.front().number, "duplicate dn '" + account.dn + "'");
    auto& own_groups = directory->groups_of_[dn];
    own_groups.insert(own_groups.end(), groups.begin(), groups.end());
    for (const auto& member : members) directory->groups_of_[member].push_back(dn);
    if (!is_account) continue;

    std::size_t index = directory->accounts_.size();
    for (const auto& value : account.alt_security_identities)
      if (auto normalized = normalize_alt_security_identity(value))
        directory->by_alt_security_identity_[*normalized].push_back(index);
    if (!account.user_principal_name.empty())
      directory->by_user_principal_name_[lower(account.user_principal_name)].push_back(index);
    if (!account.sam_account_name.empty())
      directory->by_sam_account_name_[lower(account.sam_account_name)].push_back(index);
    directory->accounts_.push_back(std::move(account));
  }
  if (rc < 0) throw LdifError(file, line_number, "cannot read the file");
  return directory;
}

DirectorySearch LdifDirectory::search(const DirectoryQuery& query) {
  std::vector<std::size_t> found;
  auto collect = [&found](const auto& index, const std::string& key) {
    if (auto it = index.find(key); it != index.end()) found.insert(found.end(), it->second.begin(), it->second.end());
  };
  for (const auto& value : query.alt_security_identities)
    if (auto normalized = normalize_alt_security_identity(value)) collect(by_alt_security_identity_, *normalized);
  for (const auto& upn : query.user_principal_names) collect(by_user_principal_name_, lower(upn));
  for (const auto& sam : query.sam_account_names) collect(by_sam_account_name_, lower(sam));
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  DirectorySearch result;
  for (auto index : found) result.accounts.push_back(accounts_[index]);
  return result;
}

DirectoryMembership LdifDirectory::is_member(const std::string& account_dn, const std::string& group_dn) {
  // Breadth-first up the memberOf graph; `seen` stops cycles (nested groups may loop in AD).
  const std::string target = normalize_dn(group_dn);
  std::unordered_set<std::string> seen{normalize_dn(account_dn)};
  std::deque<std::string> pending{*seen.begin()};
  while (!pending.empty()) {
    auto it = groups_of_.find(pending.front());
    pending.pop_front();
    if (it == groups_of_.end()) continue;
    for (const auto& group : it->second) {
      if (group == target) return {DirectoryStatus::ok, true, ""};
      if (seen.insert(group).second) pending.push_back(group);
    }
  }
  return {DirectoryStatus::ok, false, ""};
}

}  // namespace easedge::mapping
