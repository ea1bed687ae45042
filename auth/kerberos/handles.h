// Owning handles for MIT krb5 and GSSAPI objects, so every early return releases what it acquired.
#pragma once

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <krb5/krb5.h>

#include <string>
#include <utility>

namespace easedge::auth::kerberos {

// A krb5_context is not thread-safe: each call site (one KDC exchange on one worker) makes its own.
class Krb5Context {
public:
  Krb5Context() { code_ = krb5_init_context(&context_); }
  ~Krb5Context() {
    if (context_ != nullptr) krb5_free_context(context_);
  }
  Krb5Context(const Krb5Context&) = delete;
  Krb5Context& operator=(const Krb5Context&) = delete;

  // Non-zero when krb5.conf could not be read (KRB5_CONFIG points nowhere, syntax error).
  krb5_error_code init_error() const { return code_; }
  krb5_context get() const { return context_; }
  // The library's text for CODE, including the extended message of the last failed call.
  std::string message(krb5_error_code code) const {
    if (context_ == nullptr) return "krb5 context could not be created (error " + std::to_string(code) + ")";
    const char* text = krb5_get_error_message(context_, code);
    std::string result = text != nullptr ? text : "unknown krb5 error";
    krb5_free_error_message(context_, text);
    return result;
  }

private:
  krb5_context context_ = nullptr;
  krb5_error_code code_ = 0;
};

// Generic RAII wrapper for a krb5 pointer freed with `Free(context, pointer)`.
template <typename T, void (*Free)(krb5_context, T*)>
class Krb5Ptr {
public:
  explicit Krb5Ptr(krb5_context context) : context_(context) {}
  ~Krb5Ptr() { reset(); }
  Krb5Ptr(const Krb5Ptr&) = delete;
  Krb5Ptr& operator=(const Krb5Ptr&) = delete;

  T* get() const { return pointer_; }
  T** out() {
    reset();
    return &pointer_;
  }
  T* operator->() const { return pointer_; }
  explicit operator bool() const { return pointer_ != nullptr; }
  T* release() { return std::exchange(pointer_, nullptr); }
  void reset() {
    if (pointer_ != nullptr) Free(context_, pointer_);
    pointer_ = nullptr;
  }

private:
  krb5_context context_;
  T* pointer_ = nullptr;
};

inline void free_principal(krb5_context c, krb5_principal_data* p) { krb5_free_principal(c, p); }
inline void free_creds(krb5_context c, krb5_creds* p) { krb5_free_creds(c, p); }
inline void close_keytab(krb5_context c, _krb5_kt* p) { krb5_kt_close(c, p); }
inline void close_ccache(krb5_context c, _krb5_ccache* p) { krb5_cc_close(c, p); }
inline void free_ticket(krb5_context c, krb5_ticket* p) { krb5_free_ticket(c, p); }
inline void free_init_creds_opt(krb5_context c, krb5_get_init_creds_opt* p) { krb5_get_init_creds_opt_free(c, p); }

using Krb5Principal = Krb5Ptr<krb5_principal_data, free_principal>;
using Krb5Creds = Krb5Ptr<krb5_creds, free_creds>;
using Krb5Keytab = Krb5Ptr<_krb5_kt, close_keytab>;
using Krb5Ccache = Krb5Ptr<_krb5_ccache, close_ccache>;
using Krb5Ticket = Krb5Ptr<krb5_ticket, free_ticket>;
using Krb5InitCredsOpt = Krb5Ptr<krb5_get_init_creds_opt, free_init_creds_opt>;

// GSSAPI handles (pointers), released with the matching gss_release_* call.
template <typename T, OM_uint32 (*Release)(OM_uint32*, T*)>
class GssHandle {
public:
  GssHandle() = default;
  ~GssHandle() { reset(); }
  GssHandle(GssHandle&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  GssHandle& operator=(GssHandle&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  T get() const { return handle_; }
  T* out() {
    reset();
    return &handle_;
  }
  void reset() {
    OM_uint32 minor = 0;
    if (handle_ != nullptr) Release(&minor, &handle_);
    handle_ = nullptr;
  }

private:
  T handle_ = nullptr;
};

inline OM_uint32 delete_sec_context(OM_uint32* minor, gss_ctx_id_t* context) {
  return gss_delete_sec_context(minor, context, GSS_C_NO_BUFFER);
}

using GssName = GssHandle<gss_name_t, gss_release_name>;
using GssCred = GssHandle<gss_cred_id_t, gss_release_cred>;
using GssContext = GssHandle<gss_ctx_id_t, delete_sec_context>;

class GssBuffer {
public:
  GssBuffer() = default;
  ~GssBuffer() {
    OM_uint32 minor = 0;
    if (buffer_.value != nullptr) gss_release_buffer(&minor, &buffer_);
  }
  GssBuffer(const GssBuffer&) = delete;
  GssBuffer& operator=(const GssBuffer&) = delete;
  gss_buffer_t out() { return &buffer_; }
  const unsigned char* data() const { return static_cast<const unsigned char*>(buffer_.value); }
  std::size_t size() const { return buffer_.length; }

private:
  gss_buffer_desc buffer_ = GSS_C_EMPTY_BUFFER;
};

}  // namespace easedge::auth::kerberos
