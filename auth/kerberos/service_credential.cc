#include "auth/kerberos/service_credential.h"

#include <cstring>

namespace easedge::auth::kerberos {
namespace {

std::chrono::system_clock::time_point from_krb5_time(krb5_timestamp t) {
  // krb5_timestamp is a signed 32-bit count that MIT treats as unsigned (valid past 2038).
  return std::chrono::system_clock::time_point(std::chrono::seconds(static_cast<std::uint32_t>(t)));
}

Krb5Failure failure(const Krb5Context& context, Stage stage, krb5_error_code code) {
  return Krb5Failure{stage, code, context.message(code)};
}

std::string keytab_name(const std::filesystem::path& keytab) { return "FILE:" + keytab.string(); }

// Parses PRINCIPAL into ME and opens KEYTAB into KT; a parse failure is reported as STAGE.
boost::system::result<void, Krb5Failure> open_keytab(const Krb5Context& context, Stage stage,
                                                     const std::string& principal,
                                                     const std::filesystem::path& keytab, Krb5Principal& me,
                                                     Krb5Keytab& kt) {
  if (context.init_error() != 0) return failure(context, stage, context.init_error());
  if (auto code = krb5_parse_name(context.get(), principal.c_str(), me.out())) return failure(context, stage, code);
  if (auto code = krb5_kt_resolve(context.get(), keytab_name(keytab).c_str(), kt.out())) {
    return failure(context, Stage::keytab, code);
  }
  return {};
}

}  // namespace

std::string unparse_principal(krb5_context context, krb5_const_principal principal) {
  char* text = nullptr;
  if (krb5_unparse_name(context, principal, &text) != 0) return "(unprintable principal)";
  std::string result = text;
  krb5_free_unparsed_name(context, text);
  return result;
}

std::string enctype_name(std::int32_t enctype) {
  char name[64] = {};
  if (krb5_enctype_to_name(enctype, TRUE, name, sizeof name) != 0) return "enctype " + std::to_string(enctype);
  return name;
}

TicketInfo describe_ticket(krb5_context context, const krb5_creds& creds) {
  TicketInfo info;
  info.client = unparse_principal(context, creds.client);
  info.server = unparse_principal(context, creds.server);
  info.forwardable = (creds.ticket_flags & TKT_FLG_FORWARDABLE) != 0;
  info.auth_time = from_krb5_time(creds.times.authtime);
  info.end_time = from_krb5_time(creds.times.endtime);
  info.session_enctype = creds.keyblock.enctype;
  Krb5Ticket ticket(context);
  if (krb5_decode_ticket(&creds.ticket, ticket.out()) == 0) info.ticket_enctype = ticket->enc_part.enctype;
  return info;
}

boost::system::result<std::vector<KeytabEntry>, Krb5Failure> read_keytab(const std::filesystem::path& keytab) {
  Krb5Context context;
  if (context.init_error() != 0) return failure(context, Stage::keytab, context.init_error());
  Krb5Keytab kt(context.get());
  if (auto code = krb5_kt_resolve(context.get(), keytab_name(keytab).c_str(), kt.out())) {
    return failure(context, Stage::keytab, code);
  }
  krb5_kt_cursor cursor;
  if (auto code = krb5_kt_start_seq_get(context.get(), kt.get(), &cursor)) return failure(context, Stage::keytab, code);
  std::vector<KeytabEntry> entries;
  krb5_keytab_entry entry;
  while (krb5_kt_next_entry(context.get(), kt.get(), &entry, &cursor) == 0) {
    entries.push_back(KeytabEntry{unparse_principal(context.get(), entry.principal), entry.vno, entry.key.enctype});
    krb5_free_keytab_entry_contents(context.get(), &entry);
  }
  krb5_kt_end_seq_get(context.get(), kt.get(), &cursor);
  return entries;
}

boost::system::result<void, Krb5Failure> check_keytab(const std::string& principal, const std::filesystem::path& keytab) {
  Krb5Context context;
  krb5_context c = context.get();
  Krb5Principal me(c);
  Krb5Keytab kt(c);
  if (auto opened = open_keytab(context, Stage::keytab, principal, keytab, me, kt); !opened) return opened;
  krb5_keytab_entry entry;
  if (auto code = krb5_kt_get_entry(c, kt.get(), me.get(), 0, 0, &entry)) return failure(context, Stage::keytab, code);
  krb5_free_keytab_entry_contents(c, &entry);
  return {};
}

ServiceCredentialResult ServiceCredential::acquire(const std::string& principal, const std::filesystem::path& keytab) {
  Krb5Context context;
  krb5_context c = context.get();
  Krb5Principal me(c);
  Krb5Keytab kt(c);
  if (auto opened = open_keytab(context, Stage::service_ticket, principal, keytab, me, kt); !opened)
    return opened.error();
  Krb5InitCredsOpt options(c);
  if (auto code = krb5_get_init_creds_opt_alloc(c, options.out())) return failure(context, Stage::service_ticket, code);
  // S4U2Self only yields a forwardable evidence ticket (needed for S4U2Proxy) from a forwardable TGT,
  // whatever krb5.conf says.
  krb5_get_init_creds_opt_set_forwardable(options.get(), 1);

  krb5_creds creds;
  std::memset(&creds, 0, sizeof creds);
  if (auto code = krb5_get_init_creds_keytab(c, &creds, me.get(), kt.get(), 0, nullptr, options.get())) {
    return failure(context, Stage::service_ticket, code);
  }
  TicketInfo tgt = describe_ticket(c, creds);

  Krb5Ccache ccache(c);
  krb5_error_code code = krb5_cc_new_unique(c, "MEMORY", nullptr, ccache.out());
  if (code == 0) code = krb5_cc_initialize(c, ccache.get(), me.get());
  if (code == 0) code = krb5_cc_store_cred(c, ccache.get(), &creds);
  krb5_free_cred_contents(c, &creds);
  if (code != 0) return failure(context, Stage::service_ticket, code);
  std::string ccache_name = std::string("MEMORY:") + krb5_cc_get_name(c, ccache.get());

  gss_key_value_element_desc element{"ccache", ccache_name.c_str()};
  gss_key_value_set_desc store{1, &element};
  gss_OID_set_desc krb5_only{1, const_cast<gss_OID>(gss_mech_krb5)};
  GssCred cred;
  OM_uint32 minor = 0;
  OM_uint32 major = gss_acquire_cred_from(&minor, GSS_C_NO_NAME, GSS_C_INDEFINITE, &krb5_only, GSS_C_INITIATE,
                                          &store, cred.out(), nullptr, nullptr);
  if (GSS_ERROR(major)) {
    krb5_cc_destroy(c, ccache.release());
    return Krb5Failure{Stage::service_ticket, static_cast<std::int32_t>(minor), gss_status_text(major, minor)};
  }
  return std::shared_ptr<ServiceCredential>(new ServiceCredential(std::move(ccache_name), std::move(cred), std::move(tgt)));
}

ServiceCredential::~ServiceCredential() {
  cred_.reset();
  destroy_ccache(ccache_name_);
}

void destroy_ccache(const std::string& name) {
  Krb5Context context;
  if (context.init_error() != 0) return;
  krb5_ccache ccache = nullptr;
  if (krb5_cc_resolve(context.get(), name.c_str(), &ccache) == 0) krb5_cc_destroy(context.get(), ccache);
}

std::string gss_status_text(OM_uint32 major, OM_uint32 minor) {
  std::string text;
  auto append = [&text](OM_uint32 status, int type) {
    OM_uint32 message_context = 0;
    do {
      OM_uint32 ignored = 0;
      GssBuffer buffer;
      if (GSS_ERROR(gss_display_status(&ignored, status, type, GSS_C_NO_OID, &message_context, buffer.out()))) break;
      if (!text.empty()) text += ": ";
      text.append(reinterpret_cast<const char*>(buffer.data()), buffer.size());
    } while (message_context != 0);
  };
  // The mechanism's text names the real problem; the GSS-level one is only "Unspecified GSS failure".
  if (minor != 0) {
    append(minor, GSS_C_MECH_CODE);
  } else {
    append(major, GSS_C_GSS_CODE);
  }
  return text;
}

}  // namespace easedge::auth::kerberos
