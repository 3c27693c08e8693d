/**
 * Demangling: C++ as __cxa_demangle prints it (what bcc shows), Rust as
 * rustc-demangle's alternate form (no hashes). Vectors checked against GNU
 * c++filt; then every C++ symbol of libstdc++ against abi::__cxa_demangle
 * itself, through a small C++ program built here with g++.
 */
import { equal as assertEquals, ok as assert } from "node:assert/strict";
import { demangle } from "../../../lib/symbols/demangle.ts";
import { ElfFile } from "../../../lib/symbols/elf.ts";
import { commandTest } from "../../support/kernel.ts";
import { run, runOk } from "../../support/process.ts";

const CXX: [string, string][] = [
  ["_ZN4node16NodeMainInstance3RunEv", "node::NodeMainInstance::Run()"],
  [
    "_ZN2v88internal12_GLOBAL__N_16InvokeEPNS0_7IsolateERKNS1_12InvokeParamsE",
    "v8::internal::(anonymous namespace)::Invoke(v8::internal::Isolate*, " +
    "v8::internal::(anonymous namespace)::InvokeParams const&)",
  ],
  ["_ZNKSt6vectorIiSaIiEE4sizeEv", "std::vector<int, std::allocator<int> >::size() const"],
  [
    "_ZNSsC1ERKSs",
    "std::basic_string<char, std::char_traits<char>, std::allocator<char> >::" +
    "basic_string(std::string const&)",
  ],
  ["_ZN3FooD2Ev", "Foo::~Foo()"],
  ["_ZN3FooplERKS_", "Foo::operator+(Foo const&)"],
  ["_ZN3FoocvbEv", "Foo::operator bool()"],
  ["_Z3maxIiET_S0_S0_", "int max<int>(int, int)"],
  ["_Z5applyPFviEi", "apply(void (*)(int), int)"],
  ["_Z1fRA3_i", "f(int (&) [3])"],
  ["_Z1fM1AFivE", "f(int (A::*)())"],
  ["_Z3fwdIRiEOT_S1_", "int& fwd<int&>(int&)"],
  ["_Z3sumIJidEEvDpT_", "void sum<int, double>(int, double)"],
  ["_Z1fIZ1gvEUlvE_EvT_", "void f<g()::{lambda()#1}>(g()::{lambda()#1})"],
  ["_ZZ4mainE5count", "main::count"],
  ["_ZN5Outer5InnerC2Ev.cold", "Outer::Inner::Inner() [clone .cold]"],
  ["_Z3foov.isra.0", "foo() [clone .isra.0]"],
  ["_ZTV3Foo", "vtable for Foo"],
  [
    "_ZNSt3mapIiSsSt4lessIiESaISt4pairIKiSsEEEixERS3_",
    "std::map<int, std::string, std::less<int>, " +
    "std::allocator<std::pair<int const, std::string> > >::operator[](int const&)",
  ],
  [
    "_ZNSt8ios_base17register_callbackEPFvNS_5eventERS_iEi",
    "std::ios_base::register_callback(" +
    "void (*)(std::ios_base::event, std::ios_base&, int), int)",
  ],
  ["_Znwm", "operator new(unsigned long)"],
  [
    "_ZNKSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE4sizeEv@@GLIBCXX_3.4.21",
    "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >::size() const" +
    "@@GLIBCXX_3.4.21",
  ],
];

const RUST: [string, string][] = [
  ["_RNvNtCsalM65ksrrJu_3std2rt19lang_start_internal", "std::rt::lang_start_internal"],
  [
    "_RNvMs2_Cs6ygKICNz7jq_17bash_tool_backendNtB5_8Terminal4call",
    "<bash_tool_backend::Terminal>::call",
  ],
  [
    "_RINvNtNtCsalM65ksrrJu_3std3sys9backtrace28___rust_begin_short_backtraceFEuuECs6ygKICNz7jq_17bash_tool_backend",
    "std::sys::backtrace::__rust_begin_short_backtrace::<fn(), ()>",
  ],
  [
    "_RNCINvNtCsalM65ksrrJu_3std2rt10lang_startuE0Cs6ygKICNz7jq_17bash_tool_backend.llvm.4149057722433849006",
    "std::rt::lang_start::<()>::{closure#0}",
  ],
  [
    "_RNvXs_NtCs1234_7mycrate3barNtB4_6StructNtNtCsabc_4core3fmt7Display3fmt",
    "<mycrate::bar::Struct as core::fmt::Display>::fmt",
  ],
  ["_RINvCs1234_7mycrate3fooRShE", "mycrate::foo::<&[u8]>"],
  [
    "_RINvCs1234_7mycrate3fooDNtNtCsabc_4core3fmt5DebugEL_E",
    "mycrate::foo::<dyn core::fmt::Debug>",
  ],
  ["_ZN3std2rt10lang_start17h3ba3fa3df7b5e3f1E", "std::rt::lang_start"],
  [
    "_ZN60_$LT$alloc..string..String$u20$as$u20$core..fmt..Display$GT$3fmt17h8c0d2a3e8d1f0b5aE",
    "<alloc::string::String as core::fmt::Display>::fmt",
  ],
];

Deno.test("demangle: C++ as __cxa_demangle prints it", () => {
  for (const [mangled, want] of CXX) assertEquals(demangle(mangled), want, mangled);
});

Deno.test("demangle: Rust legacy and v0, without hashes", () => {
  for (const [mangled, want] of RUST) assertEquals(demangle(mangled), want, mangled);
});

Deno.test("demangle: plain and malformed names come back unchanged", () => {
  for (
    const name of ["main", "hot_leaf_function", "_Z", "_ZN3foo", "_ZN3fooE5", "_R", "_RNv", "_Zx"]
  ) {
    assertEquals(demangle(name), name);
  }
});

const CXA_PROGRAM = `
#include <cxxabi.h>
#include <cstdlib>
#include <iostream>
#include <string>
int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    int status = 0;
    char *out = abi::__cxa_demangle(line.c_str(), nullptr, nullptr, &status);
    std::cout << (status == 0 && out ? out : line.c_str()) << "\\n";
    std::free(out);
  }
}
`;

commandTest(
  "demangle: every C++ symbol of libstdc++ as abi::__cxa_demangle prints it",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "bpftk-demangle-" });
    try {
      await Deno.writeTextFile(`${dir}/cxa.cc`, CXA_PROGRAM);
      await runOk("g++", ["-O1", "-o", `${dir}/cxa`, `${dir}/cxa.cc`]);
      const lib = ["/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6"]
        .find((p) => {
          try {
            return Deno.statSync(p).isFile;
          } catch {
            return false;
          }
        });
      assert(lib, "libstdc++ is installed (g++ depends on it)");
      const names = [...new Set(ElfFile.read(lib).symbols.map((s) => s.name))]
        .filter((n) => n.startsWith("_Z"));
      assert(names.length > 3000, `${names.length} C++ symbols`);
      const out = await run(`${dir}/cxa`, [], { input: names.join("\n") + "\n" });
      const reference = out.stdout.split("\n");
      let same = 0, unchanged = 0;
      const wrong: string[] = [];
      for (const [i, name] of names.entries()) {
        const ours = demangle(name);
        if (ours === reference[i]) same++;
        else if (ours === name) unchanged++;
        else wrong.push(`${name}\n  ours:   ${ours}\n  theirs: ${reference[i]}`);
      }
      console.log(
        `${names.length} symbols: ${same} identical, ${unchanged} left mangled, ${wrong.length} differ`,
      );
      assert(same >= 0.98 * names.length, `only ${same} of ${names.length} identical`);
      assertEquals(wrong.length, 0, wrong.slice(0, 5).join("\n"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { commands: ["g++"] },
);
