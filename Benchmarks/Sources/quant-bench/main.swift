// quant-bench: throughput of every Quantization scheme on a synthetic ~256 MiB weight, quantized
// in row chunks by 2 concurrent threads, as the pipeline runs it. Prints a Markdown table.
//
//   cd Benchmarks && swift build -c release --scratch-path ../.build-bench-quant
//   ../.build-bench-quant/release/quant-bench
import Dispatch
import Quantization

#if canImport(Glibc)
  import Glibc
#else
  import Darwin
#endif

/// One benchmark row: a scheme, the weight it quantizes, and the speed it must reach.
struct Case {
  let name: String
  let scheme: any QuantizationScheme
  let shape: [Int]

  /// GB/s of input: 2 for the bf16 per-row Int8 and Float8 kernels, 0.5 for everything else.
  var target: Double {
    let perRow = (scheme as? Int8Scheme)?.granularity == .perRow || (scheme as? Float8Scheme)?.granularity == .perRow
    return perRow && scheme.source == .bf16 ? 2 : 0.5
  }
}

/// Raw buffers handed to the worker threads, which touch disjoint parts of them.
struct Unchecked<Value>: @unchecked Sendable {
  let value: Value
}

let threads = 2
let rowLength = 4096
let chunkRows = 256

/// Random values with the magnitude spread of a real weight, encoded in `format`.
func syntheticWeight(rows: Int, format: FloatFormat) -> UnsafeMutableRawBufferPointer {
  let count = rows * rowLength
  let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count * format.byteWidth, alignment: 64)
  var state: UInt64 = 0x9E37_79B9_7F4A_7C15
  for index in 0..<count {
    state ^= state << 13
    state ^= state >> 7
    state ^= state << 17
    let value = (Float(state >> 40) / Float(1 << 24) - 0.5) * 0.02 * Float(1 + (state >> 20) & 7)
    format.store(value, at: index, in: buffer)
  }
  return buffer
}

/// Quantizes the whole weight once (statistic pass included) and returns the seconds it took.
func run(_ benchmark: Case, input whole: UnsafeRawBufferPointer) throws -> Double {
  let input = Unchecked(value: whole)
  let scheme = benchmark.scheme
  let layout = try scheme.outputLayout(shape: benchmark.shape)
  let rowBytes = layout.rowLength * scheme.source.byteWidth
  let chunks = (layout.rowCount + chunkRows - 1) / chunkRows
  var gathered: [PartName: UnsafeMutableRawBufferPointer] = [:]
  for part in layout.parts where part.placement == .gathered {
    gathered[part.name] = .allocate(byteCount: part.byteCount, alignment: 64)
  }
  defer { gathered.values.forEach { $0.deallocate() } }
  let shared = Unchecked(value: gathered)
  let start = ContinuousClock.now
  var statistic = try scheme.makeStatistic(shape: benchmark.shape)
  if statistic != nil {
    // The statistic pass streams too: each thread gathers half, then they merge.
    let partials = Unchecked(value: UnsafeMutableBufferPointer<AbsMaxStatistic?>.allocate(capacity: threads))
    defer { partials.value.deallocate() }
    partials.value.initialize(repeating: statistic)
    DispatchQueue.concurrentPerform(iterations: threads) { thread in
      for chunk in stride(from: thread, to: chunks, by: threads) {
        let rows = chunk * chunkRows..<min(layout.rowCount, (chunk + 1) * chunkRows)
        try? partials.value[thread]!.accumulate(
          UnsafeRawBufferPointer(rebasing: input.value[rows.lowerBound * rowBytes..<rows.upperBound * rowBytes]),
          firstRow: rows.lowerBound)
      }
    }
    for partial in partials.value { try statistic!.merge(partial!) }
  }
  let finished = statistic
  _ = try scheme.tensorParts(shape: benchmark.shape, statistic: finished)
  DispatchQueue.concurrentPerform(iterations: threads) { thread in
    var outputs = shared.value
    for part in layout.parts where part.placement != .tensor && part.placement != .gathered {
      outputs[part.name] = .allocate(byteCount: part.byteRange(rows: 0..<chunkRows).count, alignment: 64)
    }
    defer { for part in layout.parts where shared.value[part.name] == nil { outputs[part.name]?.deallocate() } }
    for chunk in stride(from: thread, to: chunks, by: threads) {
      let rows = chunk * chunkRows..<min(layout.rowCount, (chunk + 1) * chunkRows)
      var pieces = outputs
      for part in layout.parts where part.placement != .tensor && part.placement != .gathered {
        pieces[part.name] = UnsafeMutableRawBufferPointer(
          rebasing: outputs[part.name]![0..<part.byteRange(rows: rows).count])
      }
      do {
        try scheme.quantize(
          UnsafeRawBufferPointer(rebasing: input.value[rows.lowerBound * rowBytes..<rows.upperBound * rowBytes]),
          shape: benchmark.shape, rows: rows, statistic: finished, into: pieces)
      } catch {
        fatalError("\(benchmark.name): \(error)")
      }
    }
  }
  let elapsed = ContinuousClock.now - start
  return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
}

let bf16Rows = 32768  // 32768 × 4096 bf16 = 256 MiB
let fp32Rows = 16384  // 16384 × 4096 fp32 = 256 MiB
let cases: [Case] = [
  Case(name: "Int8 per-row", scheme: Int8Scheme(source: .bf16), shape: [bf16Rows, rowLength]),
  Case(
    name: "Int8 per-tensor", scheme: Int8Scheme(source: .bf16, granularity: .perTensor), shape: [bf16Rows, rowLength]),
  Case(
    name: "Int8 per-group 32", scheme: Int8Scheme(source: .bf16, granularity: .perGroup(32)),
    shape: [bf16Rows, rowLength]),
  Case(name: "Int8 per-row", scheme: Int8Scheme(source: .fp32), shape: [fp32Rows, rowLength]),
  Case(name: "Float8 per-row", scheme: Float8Scheme(source: .bf16), shape: [bf16Rows, rowLength]),
  Case(
    name: "Float8 per-tensor", scheme: Float8Scheme(source: .bf16, granularity: .perTensor),
    shape: [bf16Rows, rowLength]),
  Case(
    name: "Float8 per-group 128", scheme: Float8Scheme(source: .bf16, granularity: .perGroup(128)),
    shape: [bf16Rows, rowLength]),
  Case(name: "Float8 per-row", scheme: Float8Scheme(source: .fp32), shape: [fp32Rows, rowLength]),
  Case(
    name: "Float8 per-column", scheme: Float8Scheme(source: .bf16, granularity: .perColumn),
    shape: [8, bf16Rows / 8, rowLength]),
  Case(
    name: "Intx int4 sym group 32", scheme: IntxScheme(source: .bf16, bits: 4, granularity: .perGroup(32)),
    shape: [bf16Rows, rowLength]),
  Case(
    name: "Intx int8 asym per-axis",
    scheme: IntxScheme(source: .bf16, bits: 8, mapping: .asymmetric, granularity: .perRow),
    shape: [bf16Rows, rowLength]),
  Case(name: "Int4 group 128", scheme: Int4Scheme(source: .bf16, groupSize: 128), shape: [bf16Rows, rowLength]),
  Case(name: "MXFP8 RCEIL", scheme: MXScheme(source: .bf16, element: .float8E4M3), shape: [bf16Rows, rowLength]),
  Case(name: "MXFP4 RCEIL", scheme: MXScheme(source: .bf16, element: .float4E2M1), shape: [bf16Rows, rowLength]),
  Case(
    name: "MXFP8 FLOOR", scheme: MXScheme(source: .bf16, element: .float8E4M3, scaling: .floor),
    shape: [bf16Rows, rowLength]),
  Case(name: "NVFP4 per-tensor scale", scheme: NVFP4Scheme(source: .bf16), shape: [bf16Rows, rowLength]),
  Case(
    name: "NVFP4 no per-tensor scale", scheme: NVFP4Scheme(source: .bf16, usesPerTensorScale: false),
    shape: [bf16Rows, rowLength]),
  Case(name: "NVFP4 per-tensor scale", scheme: NVFP4Scheme(source: .fp32), shape: [fp32Rows, rowLength]),
]

let filter = CommandLine.arguments.dropFirst().first
var inputs: [FloatFormat: UnsafeMutableRawBufferPointer] = [:]
var missed: [String] = []
print("| scheme | input | GB/s of input (2 threads, best of 3) | target |")
print("|---|---|---:|---:|")
for benchmark in cases where filter.map({ benchmark.name.contains($0) }) ?? true {
  let format = benchmark.scheme.source
  if inputs[format] == nil {
    inputs[format] = syntheticWeight(rows: format == .fp32 ? fp32Rows : bf16Rows, format: format)
  }
  let input = UnsafeRawBufferPointer(inputs[format]!)
  var best = Double.infinity
  for _ in 0..<3 { best = min(best, try run(benchmark, input: input)) }
  let speed = Double(input.count) / best / 1e9
  if speed < benchmark.target { missed.append("\(benchmark.name) \(format.rawValue)") }
  let rounded = (speed * 100).rounded() / 100
  print("| \(benchmark.name) | \(format.rawValue) \(benchmark.shape) | \(rounded) | ≥ \(benchmark.target) |")
}
if !missed.isEmpty {
  print("\nmissed the target: \(missed.joined(separator: ", "))")
  exit(1)
}
