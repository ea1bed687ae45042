// libFuzzer target: LDIF text through LdifDirectory::load (libldap's reader, AD attribute decoding, indexes),
// then searches and a membership query, so the indexes built from the text are used.
#include "mapping/ldif_directory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace {

using namespace easedge::mapping;

void check(bool invariant) {
  if (!invariant) std::abort();
}

// load() reads a path through libldap's stdio reader: each input goes to one memory file, rewritten per run.
const std::string& memory_file(const std::uint8_t* data, std::size_t size) {
  static const int fd = memfd_create("ldif_fuzz", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  check(fd >= 0 && ftruncate(fd, 0) == 0);
  check(pwrite(fd, data, size, 0) == static_cast<ssize_t>(size));
  return path;
}

void use(LdifDirectory& directory) {
  DirectoryQuery query;
  query.user_principal_names = {"alice@corp.example.test", "BOB@corp.example.test"};
  query.sam_account_names = {"alice", "carol"};
  query.alt_security_identities = {
      "X509:<I>DC=test,DC=example,DC=corp,CN=EASEdge Lab Issuing CA<SR>bb693593b2b9791d911a3c1549a583997a524f58",
      "X509:<RFC822>alice@corp.example.test"};
  DirectorySearch found = directory.search(query);
  check(found.status == DirectoryStatus::ok && found.accounts.size() <= directory.size());
  for (const auto& account : found.accounts) {
    (void)account.disabled();
    (void)account.locked_out();
    DirectoryMembership membership =
        directory.is_member(account.dn, "CN=EAS Users,OU=Groups,DC=corp,DC=example,DC=test");
    check(membership.status == DirectoryStatus::ok);
  }
  (void)directory.is_member("CN=alice,CN=Users,DC=corp,DC=example,DC=test",
                            "cn=eas users,ou=groups,dc=corp,dc=example,dc=test");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::shared_ptr<LdifDirectory> directory;
  try {
    directory = LdifDirectory::load(memory_file(data, size));
  } catch (const LdifError&) {
    return 0;
  }
  use(*directory);
  return 0;
}
