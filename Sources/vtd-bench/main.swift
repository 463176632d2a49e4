// make bench: figures measured through the C ABI entry points.
import SwiftVTd
print("vtd-bench: no benchmarks yet")
