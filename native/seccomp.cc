// libseccomp -> classic BPF bytes. The profile is compiled here, in the parent (Node) process,
// so the forked child only has to call seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog) with the
// bytes it was handed: no allocation, no libseccomp, no parsing after fork().
//
// Input is already normalised by src/linux/seccomp.ts (OCI strings -> numbers, arch names ->
// libseccomp names); this file only checks shapes and talks to libseccomp. Rule semantics
// follow runc (libcontainer/seccomp/seccomp_linux.go):
//   - syscalls libseccomp cannot resolve are skipped and reported, not errors;
//   - rules whose action equals the default action are dropped (libseccomp refuses them);
//   - if one rule has more than one condition on the same argument index, each condition
//     becomes its own rule (libseccomp cannot AND two conditions on one argument);
//   - the non-exact rule API is used, so libseccomp may rewrite a rule per architecture
//     (e.g. socketcall multiplexing on x86).
#include "binding.h"

#include <seccomp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#ifndef NODE_ADDON_API_CPP_EXCEPTIONS  // napi.h derives it from -fexceptions
#error "native/seccomp.cc reports errors by throwing Napi::Error: build with -fexceptions (binding.gyp)"
#endif

namespace {

struct FilterRelease {
  void operator()(void* ctx) const {
    seccomp_release(ctx);
  }
};
using Filter = std::unique_ptr<void, FilterRelease>;  // scmp_filter_ctx is a void*

struct OwnedFd {
  int fd = -1;
  OwnedFd() = default;
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd() {
    if (fd >= 0) close(fd);
  }
};

// A SystemError-shaped error ({code, errno, syscall}) whose syscall is the libseccomp function,
// naming what the call was about: kind is "syscall", "arch" or "action", and the subject is
// also set as a property (seccompSyscall / arch / action) so TS can branch without parsing text.
Napi::Error SeccompError(Napi::Env env, int err, const char* fn, const std::string& kind, const std::string& subject) {
  const char* name = strerrorname_np(err);
  std::string msg =
      std::string(fn) + " (" + kind + " `" + subject + "`): " + (name ? name : "EUNKNOWN") + " (" + strerror(err) + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, name ? name : "EUNKNOWN"));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, fn));
  e.Set(kind == "syscall" ? "seccompSyscall" : kind, Napi::String::New(env, subject));
  return e;
}

std::string Hex(uint32_t v) {
  char buf[16];
  snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

[[noreturn]] void ThrowType(Napi::Env env, const std::string& what) {
  throw Napi::TypeError::New(env, "seccompCompile: " + what);
}

[[noreturn]] void ThrowRange(Napi::Env env, const std::string& what) {
  throw Napi::RangeError::New(env, "seccompCompile: " + what);
}

Napi::Value Field(const Napi::Object& obj, const char* key) {
  return obj.Get(key);
}

std::string StringField(Napi::Env env, const Napi::Object& obj, const char* key, const std::string& where) {
  Napi::Value v = Field(obj, key);
  if (!v.IsString()) ThrowType(env, where + "." + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

// An integer-valued JS number in [0, max]; seccomp actions are u32, indexes and ops are small.
uint32_t U32Field(Napi::Env env, const Napi::Object& obj, const char* key, const std::string& where) {
  Napi::Value v = Field(obj, key);
  if (!v.IsNumber()) ThrowType(env, where + "." + key + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || std::trunc(d) != d)
    ThrowRange(env, where + "." + key + " must be an integer from 0 to 2^32-1");
  return static_cast<uint32_t>(d);
}

// A u64 comparison datum: a bigint (exact) or an integer-valued number below 2^64.
// `undefined` reads as 0 so valueTwo may be omitted.
uint64_t U64Field(Napi::Env env, const Napi::Object& obj, const char* key, const std::string& where) {
  Napi::Value v = Field(obj, key);
  if (v.IsUndefined()) return 0;
  if (v.IsBigInt()) {
    bool lossless = false;
    uint64_t r = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) ThrowRange(env, where + "." + key + " must be a bigint from 0 to 2^64-1");
    return r;
  }
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d < 18446744073709551616.0) || std::trunc(d) != d)
      ThrowRange(env, where + "." + key + " must be an integer from 0 to 2^64-1");
    return static_cast<uint64_t>(d);
  }
  ThrowType(env, where + "." + key + " must be a bigint or a number");
}

Napi::Array ArrayField(Napi::Env env, const Napi::Object& obj, const char* key, const std::string& where) {
  Napi::Value v = Field(obj, key);
  if (!v.IsArray()) ThrowType(env, where + "." + key + " must be an array");
  return v.As<Napi::Array>();
}

Napi::Object ObjectAt(Napi::Env env, const Napi::Array& arr, uint32_t i, const std::string& where) {
  Napi::Value v = arr.Get(i);
  if (!v.IsObject() || v.IsArray()) ThrowType(env, where + " must be an object");
  return v.As<Napi::Object>();
}

// seccompCompile({defaultAction, arches, rules}) -> {bpf: Buffer, skipped: string[]}
Napi::Value SeccompCompile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) ThrowType(env, "expected a profile object");
  Napi::Object profile = info[0].As<Napi::Object>();

  const uint32_t defaultAction = U32Field(env, profile, "defaultAction", "profile");
  Napi::Array arches = ArrayField(env, profile, "arches", "profile");
  Napi::Array rules = ArrayField(env, profile, "rules", "profile");

  // seccomp_init() validates the action (and that the kernel supports it); NULL means EINVAL
  // in practice, the library sets no errno.
  Filter ctx(seccomp_init(defaultAction));
  if (!ctx) throw SeccompError(env, EINVAL, "seccomp_init", "action", Hex(defaultAction));

  // The child sets no_new_privs itself (or keeps CAP_SYS_ADMIN); the flag only matters to
  // seccomp_load(), which we never call, but keep the context honest.
  int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0);
  if (rc < 0) throw SystemError(env, -rc, "seccomp_attr_set");

  // Architectures first, so every rule added below is generated for all of them. The native
  // architecture is always present (seccomp_init adds it); adding it again is EEXIST.
  for (uint32_t i = 0; i < arches.Length(); i++) {
    Napi::Value v = arches.Get(i);
    if (!v.IsString()) ThrowType(env, "profile.arches[" + std::to_string(i) + "] must be a string");
    std::string arch = v.As<Napi::String>().Utf8Value();
    uint32_t token = seccomp_arch_resolve_name(arch.c_str());
    if (token == 0) throw SeccompError(env, EINVAL, "seccomp_arch_resolve_name", "arch", arch);
    rc = seccomp_arch_add(ctx.get(), token);
    if (rc < 0 && rc != -EEXIST) throw SeccompError(env, -rc, "seccomp_arch_add", "arch", arch);
  }

  std::vector<std::string> skipped;
  std::unordered_set<std::string> skippedSeen;
  for (uint32_t i = 0; i < rules.Length(); i++) {
    const std::string where = "profile.rules[" + std::to_string(i) + "]";
    Napi::Object rule = ObjectAt(env, rules, i, where);
    std::string name = StringField(env, rule, "syscall", where);
    const uint32_t action = U32Field(env, rule, "action", where);
    Napi::Array args = ArrayField(env, rule, "args", where);

    std::vector<scmp_arg_cmp> conds;
    conds.reserve(args.Length());
    unsigned perIndex[6] = {0, 0, 0, 0, 0, 0};
    bool sameIndexTwice = false;
    for (uint32_t j = 0; j < args.Length(); j++) {
      const std::string aw = where + ".args[" + std::to_string(j) + "]";
      Napi::Object arg = ObjectAt(env, args, j, aw);
      uint32_t index = U32Field(env, arg, "index", aw);
      uint32_t op = U32Field(env, arg, "op", aw);
      if (index >= 6) ThrowRange(env, aw + ".index must be from 0 to 5");
      if (op <= _SCMP_CMP_MIN || op >= _SCMP_CMP_MAX) ThrowRange(env, aw + ".op is not a SCMP_CMP_* value");
      scmp_arg_cmp c{};
      c.arg = index;
      c.op = static_cast<scmp_compare>(op);
      // For SCMP_CMP_MASKED_EQ datum_a is the mask and datum_b the value, which is exactly
      // OCI's (value, valueTwo); the other operators ignore datum_b.
      c.datum_a = U64Field(env, arg, "value", aw);
      c.datum_b = U64Field(env, arg, "valueTwo", aw);
      if (++perIndex[index] > 1) sameIndexTwice = true;
      conds.push_back(c);
    }

    if (action == defaultAction) continue;  // redundant, and libseccomp rejects it

    // Unknown to libseccomp (too new, or not on any architecture it knows): runc logs and
    // ignores these, so a profile written for a newer kernel still loads.
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) {
      if (skippedSeen.insert(name).second) skipped.push_back(name);
      continue;
    }

    if (sameIndexTwice) {
      for (const scmp_arg_cmp& c : conds) {
        rc = seccomp_rule_add_array(ctx.get(), action, nr, 1, &c);
        if (rc < 0) throw SeccompError(env, -rc, "seccomp_rule_add_array", "syscall", name);
      }
    } else {
      rc = seccomp_rule_add_array(ctx.get(), action, nr, static_cast<unsigned>(conds.size()),
                                  conds.empty() ? nullptr : conds.data());
      if (rc < 0) throw SeccompError(env, -rc, "seccomp_rule_add_array", "syscall", name);
    }
  }

  // libseccomp 2.5 only exports to a file descriptor; a memfd keeps it in memory.
  OwnedFd mem;
  mem.fd = memfd_create("tsrun-seccomp-bpf", MFD_CLOEXEC);
  if (mem.fd < 0) throw SystemError(env, errno, "memfd_create");
  rc = seccomp_export_bpf(ctx.get(), mem.fd);
  if (rc < 0) throw SystemError(env, -rc, "seccomp_export_bpf");
  ctx.reset();

  struct stat st;
  if (fstat(mem.fd, &st) < 0) throw SystemError(env, errno, "fstat");
  const size_t size = static_cast<size_t>(st.st_size);
  Napi::Buffer<uint8_t> bpf = Napi::Buffer<uint8_t>::New(env, size);
  size_t done = 0;
  while (done < size) {
    ssize_t n = pread(mem.fd, bpf.Data() + done, size - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw SystemError(env, errno, "pread");
    }
    if (n == 0) throw SystemError(env, EIO, "pread");  // the memfd shrank under us: cannot happen
    done += static_cast<size_t>(n);
  }

  Napi::Array skippedArr = Napi::Array::New(env, skipped.size());
  for (size_t i = 0; i < skipped.size(); i++) skippedArr.Set(static_cast<uint32_t>(i), skipped[i]);

  Napi::Object out = Napi::Object::New(env);
  out.Set("bpf", bpf);
  out.Set("skipped", skippedArr);
  return out;
}

// The numeric values the TS side must use, taken from the seccomp.h this addon was built
// against, so nothing is hard-coded in TypeScript. One flat object keyed by the OCI/libseccomp
// names; SCMP_ACT_ERRNO and SCMP_ACT_TRACE are the bases: the action is
// (base | (n & 0xffff)) >>> 0. `version` is the libseccomp actually loaded ("2.5.4").
Napi::Value SeccompActions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  auto num = [&](const char* key, double v) { out.Set(key, Napi::Number::New(env, v)); };
  num("SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS);
  num("SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD);
  num("SCMP_ACT_KILL", SCMP_ACT_KILL);
  num("SCMP_ACT_TRAP", SCMP_ACT_TRAP);
  num("SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0));
  num("SCMP_ACT_TRACE", SCMP_ACT_TRACE(0));
  num("SCMP_ACT_ALLOW", SCMP_ACT_ALLOW);
  num("SCMP_ACT_LOG", SCMP_ACT_LOG);
  num("SCMP_ACT_NOTIFY", SCMP_ACT_NOTIFY);
  num("SCMP_CMP_NE", SCMP_CMP_NE);
  num("SCMP_CMP_LT", SCMP_CMP_LT);
  num("SCMP_CMP_LE", SCMP_CMP_LE);
  num("SCMP_CMP_EQ", SCMP_CMP_EQ);
  num("SCMP_CMP_GE", SCMP_CMP_GE);
  num("SCMP_CMP_GT", SCMP_CMP_GT);
  num("SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ);

  const scmp_version* v = seccomp_version();
  out.Set("version",
          Napi::String::New(env, std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->micro)));
  return out;
}

}  // namespace

void InitSeccomp(Napi::Env env, Napi::Object exports) {
  exports.Set("seccompCompile", Napi::Function::New(env, SeccompCompile, "seccompCompile"));
  exports.Set("seccompActions", Napi::Function::New(env, SeccompActions, "seccompActions"));
}
