#include "mapping/ldap_directory.h"

#include <ldap.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <strings.h>
#include <sys/time.h>

namespace easedge::mapping {
namespace {

using Clock = std::chrono::steady_clock;

// The first wait after a failed connection; it doubles up to reconnect_max_backoff.
constexpr std::chrono::seconds first_backoff{1};

// What the mapping decision reads from an account (see Account).
char* account_attributes[] = {const_cast<char*>("sAMAccountName"),
                              const_cast<char*>("userPrincipalName"),
                              const_cast<char*>("objectSid"),
                              const_cast<char*>("userAccountControl"),
                              const_cast<char*>("msDS-User-Account-Control-Computed"),
                              const_cast<char*>("accountExpires"),
                              const_cast<char*>("whenCreated"),
                              const_cast<char*>("mail"),
                              const_cast<char*>("altSecurityIdentities"),
                              const_cast<char*>("objectClass"),
                              nullptr};
char* no_attributes[] = {const_cast<char*>(LDAP_NO_ATTRS), nullptr};

// Errors after which the connection cannot be trusted any more: drop it and reconnect.
bool transport_error(int rc) {
  return rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT || rc == LDAP_CONNECT_ERROR || rc == LDAP_UNAVAILABLE ||
         rc == LDAP_BUSY || rc == LDAP_LOCAL_ERROR || rc == LDAP_DECODING_ERROR || rc == LDAP_ENCODING_ERROR;
}

std::string describe(LDAP* handle, int rc) {
  std::string text = ldap_err2string(rc);
  char* diagnostic = nullptr;
  if (handle && ldap_get_option(handle, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diagnostic) == LDAP_OPT_SUCCESS && diagnostic) {
    if (*diagnostic) text += std::string(" (") + diagnostic + ")";
    ldap_memfree(diagnostic);
  }
  return text;
}

timeval timeval_of(std::chrono::seconds seconds) { return {static_cast<time_t>(seconds.count()), 0}; }

bool is_account_class(std::string_view value) {
  return std::any_of(std::begin(account_object_classes), std::end(account_object_classes), [&](const char* c) {
    return value.size() == std::strlen(c) && ::strncasecmp(value.data(), c, value.size()) == 0;
  });
}

std::vector<Account> accounts_of(LDAP* handle, LDAPMessage* result) {
  std::vector<Account> accounts;
  for (LDAPMessage* entry = ldap_first_entry(handle, result); entry; entry = ldap_next_entry(handle, entry)) {
    Account account;
    bool is_account = false;
    if (char* dn = ldap_get_dn(handle, entry)) {
      account.dn = dn;
      ldap_memfree(dn);
    }
    BerElement* ber = nullptr;
    for (char* name = ldap_first_attribute(handle, entry, &ber); name; name = ldap_next_attribute(handle, entry, ber)) {
      if (berval** values = ldap_get_values_len(handle, entry, name)) {
        for (berval** v = values; *v; ++v) {
          std::string_view value((*v)->bv_val, (*v)->bv_len);
          if (::strcasecmp(name, "objectClass") == 0)
            is_account = is_account || is_account_class(value);
          else
            set_account_attribute(account, name, value);  // a malformed value from the DC leaves the field empty
        }
        ldap_value_free_len(values);
      }
      ldap_memfree(name);
    }
    if (ber) ber_free(ber, 0);
    if (is_account) accounts.push_back(std::move(account));
  }
  return accounts;
}

std::string read_password(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("mapping.directory.ldap.password_file: cannot read " + file.string());
  std::string password((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) password.pop_back();
  if (password.empty()) throw std::runtime_error("mapping.directory.ldap.password_file: " + file.string() + " is empty");
  return password;
}

}  // namespace

std::string escape_filter_value(std::string_view value) {
  berval in{value.size(), const_cast<char*>(value.data())};
  berval out{0, nullptr};
  if (ldap_bv2escaped_filter_value(&in, &out) != 0) throw std::bad_alloc();
  std::string escaped(out.bv_val, out.bv_len);
  ber_memfree(out.bv_val);
  return escaped;
}

std::string search_filter(const DirectoryQuery& query) {
  std::string any;
  auto add = [&any](const char* attribute, std::string_view value) {
    any += std::string("(") + attribute + "=" + escape_filter_value(value) + ")";
  };
  constexpr std::string_view prefix = "X509:";
  for (const auto& value : query.alt_security_identities) {
    add("altSecurityIdentities", value);
    if (value.size() > prefix.size() && ::strncasecmp(value.data(), prefix.data(), prefix.size()) == 0)
      add("altSecurityIdentities", std::string(prefix) + " " + value.substr(prefix.size()));
  }
  for (const auto& upn : query.user_principal_names) add("userPrincipalName", upn);
  for (const auto& sam : query.sam_account_names) add("sAMAccountName", sam);
  if (any.empty()) return "";
  std::string classes;
  for (const char* c : account_object_classes) classes += std::string("(objectClass=") + c + ")";
  return "(&(|" + classes + ")(|" + any + "))";
}

std::string membership_filter(const std::string& group_dn) {
  return "(memberOf:1.2.840.113556.1.4.1941:=" + escape_filter_value(group_dn) + ")";
}

struct LdapDirectory::Connection {
  LDAP* handle = nullptr;
  Clock::time_point retry_at{};
  std::chrono::seconds backoff{0};
  std::string last_error;

  void close() {
    if (handle) ldap_unbind_ext_s(handle, nullptr, nullptr);
    handle = nullptr;
  }
  ~Connection() { close(); }
};

struct LdapDirectory::Outcome {
  bool ok = false;
  std::string detail;
};

// Exclusive use of one pooled connection for one operation.
class LdapDirectory::Lease {
public:
  explicit Lease(LdapDirectory& directory) : directory_(directory) {
    std::unique_lock lock(directory_.mutex_);
    directory_.idle_changed_.wait(lock, [this] { return !directory_.idle_.empty(); });
    connection_ = std::move(directory_.idle_.back());
    directory_.idle_.pop_back();
  }
  ~Lease() {
    {
      std::lock_guard lock(directory_.mutex_);
      directory_.idle_.push_back(std::move(connection_));
    }
    directory_.idle_changed_.notify_one();
  }
  Connection& connection() { return *connection_; }

private:
  LdapDirectory& directory_;
  std::unique_ptr<Connection> connection_;
};

std::shared_ptr<LdapDirectory> LdapDirectory::create(const config::LdapDirectoryConfig& config) {
  std::string password = config.bind_dn.empty() ? "" : read_password(config.password_file);
  return std::shared_ptr<LdapDirectory>(new LdapDirectory(config, std::move(password)));
}

LdapDirectory::LdapDirectory(const config::LdapDirectoryConfig& config, std::string password)
    : config_(config), password_(std::move(password)) {
  for (std::size_t i = 0; i < std::max<std::size_t>(config_.worker_threads, 1); ++i)
    idle_.push_back(std::make_unique<Connection>());
}

LdapDirectory::~LdapDirectory() = default;

std::string LdapDirectory::connect(Connection& connection) const {
  LDAP* handle = nullptr;
  if (int rc = ldap_initialize(&handle, config_.url.c_str()); rc != LDAP_SUCCESS)
    return "cannot use " + config_.url + ": " + ldap_err2string(rc);
  auto fail = [&](const std::string& step, int rc) {
    std::string error = step + " " + config_.url + ": " + describe(handle, rc);
    ldap_unbind_ext_s(handle, nullptr, nullptr);
    return error;
  };
  int version = LDAP_VERSION3;
  ldap_set_option(handle, LDAP_OPT_PROTOCOL_VERSION, &version);
  ldap_set_option(handle, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);  // never chase a referral to another server
  timeval timeout = timeval_of(config_.timeout);
  ldap_set_option(handle, LDAP_OPT_NETWORK_TIMEOUT, &timeout);
  ldap_set_option(handle, LDAP_OPT_TIMEOUT, &timeout);
  int require_certificate = LDAP_OPT_X_TLS_HARD;
  ldap_set_option(handle, LDAP_OPT_X_TLS_REQUIRE_CERT, &require_certificate);
  int minimum = LDAP_OPT_X_TLS_PROTOCOL_TLS1_2;
  ldap_set_option(handle, LDAP_OPT_X_TLS_PROTOCOL_MIN, &minimum);
  if (!config_.ca.empty()) ldap_set_option(handle, LDAP_OPT_X_TLS_CACERTFILE, config_.ca.c_str());
  int client = 0;
  if (int rc = ldap_set_option(handle, LDAP_OPT_X_TLS_NEWCTX, &client); rc != LDAP_OPT_SUCCESS)
    return fail("TLS set-up for", rc);
  if (config_.starttls)
    if (int rc = ldap_start_tls_s(handle, nullptr, nullptr); rc != LDAP_SUCCESS) return fail("StartTLS with", rc);
  berval credentials{password_.size(), const_cast<char*>(password_.data())};
  int rc = ldap_sasl_bind_s(handle, config_.bind_dn.empty() ? nullptr : config_.bind_dn.c_str(), LDAP_SASL_SIMPLE,
                            &credentials, nullptr, nullptr, nullptr);
  if (rc != LDAP_SUCCESS) return fail("bind as '" + config_.bind_dn + "' to", rc);
  connection.handle = handle;
  return "";
}

template <typename Operation>
LdapDirectory::Outcome LdapDirectory::run(Operation&& operation) {
  Lease lease(*this);
  Connection& c = lease.connection();
  auto failed = [&](std::string error) {
    c.backoff = c.backoff.count() == 0 ? first_backoff : std::min(c.backoff * 2, config_.reconnect_max_backoff);
    c.retry_at = Clock::now() + c.backoff;
    c.last_error = error;
    return Outcome{false, std::move(error)};
  };
  // A pooled connection may have died while idle (DC restarted): one retry on a new connection.
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool fresh = c.handle == nullptr;
    if (fresh) {
      if (Clock::now() < c.retry_at) return {false, c.last_error + " (reconnecting with backoff)"};
      if (auto error = connect(c); !error.empty()) return failed(error);
    }
    int rc = operation(c.handle);
    if (rc == LDAP_SUCCESS) {
      c.backoff = std::chrono::seconds(0);
      return {true, ""};
    }
    std::string error = describe(c.handle, rc);
    if (!transport_error(rc)) return {false, error};
    c.close();
    if (fresh) return failed(error);
  }
  return failed(c.last_error);
}

DirectorySearch LdapDirectory::search(const DirectoryQuery& query) {
  DirectorySearch result;
  std::string filter = search_filter(query);
  if (filter.empty()) return result;
  timeval timeout = timeval_of(config_.timeout);
  Outcome outcome = run([&](LDAP* handle) {
    LDAPMessage* answer = nullptr;
    int rc = ldap_search_ext_s(handle, config_.base.c_str(), LDAP_SCOPE_SUBTREE, filter.c_str(), account_attributes, 0,
                               nullptr, nullptr, &timeout, LDAP_NO_LIMIT, &answer);
    if (rc == LDAP_SUCCESS) result.accounts = accounts_of(handle, answer);
    ldap_msgfree(answer);
    return rc;
  });
  if (!outcome.ok) return {DirectoryStatus::unavailable, {}, outcome.detail};
  return result;
}

DirectoryMembership LdapDirectory::is_member(const std::string& account_dn, const std::string& group_dn) {
  DirectoryMembership result;
  std::string filter = membership_filter(group_dn);
  timeval timeout = timeval_of(config_.timeout);
  Outcome outcome = run([&](LDAP* handle) {
    LDAPMessage* answer = nullptr;
    int rc = ldap_search_ext_s(handle, account_dn.c_str(), LDAP_SCOPE_BASE, filter.c_str(), no_attributes, 0, nullptr,
                               nullptr, &timeout, LDAP_NO_LIMIT, &answer);
    if (rc == LDAP_SUCCESS) result.member = ldap_count_entries(handle, answer) > 0;
    ldap_msgfree(answer);
    return rc == LDAP_NO_SUCH_OBJECT ? LDAP_SUCCESS : rc;  // the account is gone: not a member
  });
  if (!outcome.ok) return {DirectoryStatus::unavailable, false, outcome.detail};
  return result;
}

}  // namespace easedge::mapping
