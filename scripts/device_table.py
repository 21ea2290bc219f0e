"""Prints a C++ header holding a table of uint64_t words for kernels: one copy in device
memory and one for host code (the HostExec tests), and an accessor that picks the right one.
Shared by the generators of kernels/powers_of_five.cuh and kernels/powers_of_ten.cuh."""


def print_device_table(comment, constants, macro, table, accessor, words):
    """comment: the header's comment lines; constants: (name, value) int32 pairs; macro: the
    temporary macro holding the words; table: the arrays' name stem (<table>OnDevice,
    <table>OnHost); accessor: the function returning the table; words: lines of words."""
    print("#pragma once")
    for line in comment:
        print("// " + line)
    print("#include <cstdint>")
    print()
    print("namespace sluice::gpu {")
    print()
    for name, value in constants:
        print("constexpr int32_t %s = %d;" % (name, value))
    print()
    print("#define %s \\" % macro)
    print("  { \\")
    for w in words:
        print("    %s \\" % w)
    print("  }")
    print()
    print("// Device code reads the device's copy, host code (the HostExec tests) the host's.")
    print("static __device__ const uint64_t %sOnDevice[] = %s;" % (table, macro))
    print("inline constexpr uint64_t %sOnHost[] = %s;" % (table, macro))
    print("#undef %s" % macro)
    print()
    print("__host__ __device__ inline const uint64_t* %s() {" % accessor)
    print("#ifdef __CUDA_ARCH__")
    print("  return %sOnDevice;" % table)
    print("#else")
    print("  return %sOnHost;" % table)
    print("#endif")
    print("}")
    print()
    print("}  // namespace sluice::gpu")
