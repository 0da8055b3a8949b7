// spill-bench: ratio and single-thread speed of the spill codec on synthetic weights.
//
// For bf16 weights, fp32 weights and int8 qdata (~256 MiB each, seeded), it encodes and decodes the data in
// SpillFile-sized blocks (1 MiB) with `--spill-compression lz4` (byte planes, then LZ4 per plane), with plain LZ4 on
// the same blocks (no planes, no header, no checksum: the baseline the planes are measured against) and with
// `--spill-compression none`, checks every round trip, and prints a Markdown table. Then it spills the bf16 data
// through a SpillFile (append, then read back in reverse record order) to time the whole path through the page cache.
//
// Exits 1 when a round trip differs or when the design's claim does not hold: bf16 must compress below 0.9 with planes
// while plain LZ4 stays above 0.99.
//
//   swift run -c release --package-path Benchmarks spill-bench [--mib 256] [--runs 3] [--dir /tmp]
import CLZ4
import Foundation
import Pipeline

struct Options {
  var mebibytes = 256
  var runs = 3
  var directory = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"

  init(_ arguments: [String]) {
    var iterator = arguments.makeIterator()
    while let argument = iterator.next() {
      switch argument {
      case "--mib": mebibytes = Int(iterator.next() ?? "") ?? mebibytes
      case "--runs": runs = max(1, Int(iterator.next() ?? "") ?? runs)
      case "--dir": directory = iterator.next() ?? directory
      default:
        FileHandle.standardError.write(Data("usage: spill-bench [--mib N] [--runs N] [--dir PATH]\n".utf8))
        exit(2)
      }
    }
  }
}

/// SplitMix64, so that every run sees the same data.
struct Generator {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// A normally distributed value with standard deviation `sigma` (Box–Muller, one of the pair).
  mutating func gaussian(sigma: Double) -> Double {
    let u = (Double(next() >> 11) + 1) * 0x1p-53  // (0, 1]
    let v = Double(next() >> 11) * 0x1p-53
    return sigma * (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
  }
}

/// One kind of spilled data.
struct Dataset {
  var name: String
  var elementWidth: Int
  var bytes: [UInt8]

  static func bf16(byteCount: Int) -> Dataset {
    var generator = Generator(state: 1)
    let values = [UInt16](unsafeUninitializedCapacity: byteCount / 2) { buffer, count in
      for index in buffer.indices {
        let bits = Float(generator.gaussian(sigma: 0.02)).bitPattern
        buffer[index] = UInt16((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).littleEndian
      }
      count = buffer.count
    }
    return Dataset(name: "bf16 weights", elementWidth: 2, bytes: values.withUnsafeBytes(Array.init))
  }

  static func fp32(byteCount: Int) -> Dataset {
    var generator = Generator(state: 2)
    let values = [UInt32](unsafeUninitializedCapacity: byteCount / 4) { buffer, count in
      for index in buffer.indices { buffer[index] = Float(generator.gaussian(sigma: 0.02)).bitPattern.littleEndian }
      count = buffer.count
    }
    return Dataset(name: "fp32 weights", elementWidth: 4, bytes: values.withUnsafeBytes(Array.init))
  }

  /// Rows of 4096 gaussian values quantized symmetrically per row to int8, as int8 weight-only qdata.
  static func int8(byteCount: Int) -> Dataset {
    var generator = Generator(state: 3)
    let rowLength = 4096
    var row = [Double](repeating: 0, count: rowLength)
    let values = [UInt8](unsafeUninitializedCapacity: byteCount) { buffer, count in
      for start in stride(from: 0, to: buffer.count, by: rowLength) {
        var absMax = 0.0
        for index in row.indices {
          row[index] = generator.gaussian(sigma: 0.02)
          absMax = max(absMax, abs(row[index]))
        }
        let scale = absMax / 127
        for index in start..<min(start + rowLength, buffer.count) {
          let quantized = (row[index - start] / scale).rounded(.toNearestOrEven)
          buffer[index] = UInt8(bitPattern: Int8(min(127, max(-128, quantized))))
        }
      }
      count = buffer.count
    }
    return Dataset(name: "int8 qdata", elementWidth: 1, bytes: values)
  }
}

/// One way of storing spilled blocks.
enum Method: CaseIterable {
  case planes, plainLZ4, none

  var label: String {
    switch self {
    case .planes: "`lz4` (byte planes + LZ4)"
    case .plainLZ4: "plain LZ4 (no planes)"
    case .none: "`none`"
    }
  }
}

struct Measurement {
  var ratio: Double
  var encodeGBps: Double
  var decodeGBps: Double
  var roundTrip: Bool
}

let blockLength = SpillFile.defaultBlockLength

func seconds(_ duration: Duration) -> Double {
  Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}

/// Encodes `data` block by block into `encoded`, returning each block's (offset, length).
func encode(
  _ data: UnsafeRawBufferPointer, method: Method, elementWidth: Int, into encoded: UnsafeMutableRawBufferPointer
)
  -> [(Int, Int)]
{
  let codec = SpillCodec(compression: method == .none ? .none : .lz4, elementWidth: elementWidth)
  var blocks: [(Int, Int)] = []
  var offset = 0
  for start in stride(from: 0, to: data.count, by: blockLength) {
    let block = UnsafeRawBufferPointer(rebasing: data[start..<min(start + blockLength, data.count)])
    let output = UnsafeMutableRawBufferPointer(rebasing: encoded[offset...])
    let length: Int
    if method == .plainLZ4 {
      length = Int(
        LZ4_compress_default(
          block.baseAddress!.assumingMemoryBound(to: CChar.self),
          output.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(block.count), Int32(output.count)))
    } else {
      length = codec.encode(block, into: output)
    }
    blocks.append((offset, length))
    offset += length
  }
  return blocks
}

func decode(
  _ encoded: UnsafeRawBufferPointer, blocks: [(Int, Int)], method: Method, into data: UnsafeMutableRawBufferPointer
) throws {
  for (index, (offset, length)) in blocks.enumerated() {
    let start = index * blockLength
    let block = UnsafeRawBufferPointer(rebasing: encoded[offset..<offset + length])
    let destination = UnsafeMutableRawBufferPointer(rebasing: data[start..<min(start + blockLength, data.count)])
    if method == .plainLZ4 {
      let decoded = LZ4_decompress_safe(
        block.baseAddress!.assumingMemoryBound(to: CChar.self),
        destination.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(length), Int32(destination.count))
      guard decoded == destination.count else { throw SpillError(.corruptBlock, "plain LZ4 block \(index) failed") }
    } else {
      try SpillCodec.decode(block, into: destination)
    }
  }
}

func measure(_ dataset: Dataset, method: Method, runs: Int) throws -> Measurement {
  let count = dataset.bytes.count
  let capacity = count + (count / blockLength + 1) * (256 + blockLength / 255)
  let encoded = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 64)
  let decoded = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 64)
  defer {
    encoded.deallocate()
    decoded.deallocate()
  }
  // Touch both buffers so that page faults are not timed.
  encoded.initializeMemory(as: UInt8.self, repeating: 0)
  decoded.initializeMemory(as: UInt8.self, repeating: 0)
  let clock = ContinuousClock()
  var blocks: [(Int, Int)] = []
  var encodeBest = Double.infinity
  var decodeBest = Double.infinity
  var roundTrip = true
  try dataset.bytes.withUnsafeBytes { data in
    for _ in 0..<runs {
      encodeBest = min(
        encodeBest,
        seconds(
          clock.measure {
            blocks = encode(data, method: method, elementWidth: dataset.elementWidth, into: encoded)
          }))
      decoded.initializeMemory(as: UInt8.self, repeating: 0)
      let elapsed = try clock.measure {
        try decode(UnsafeRawBufferPointer(encoded), blocks: blocks, method: method, into: decoded)
      }
      decodeBest = min(decodeBest, seconds(elapsed))
      roundTrip = roundTrip && memcmp(data.baseAddress!, decoded.baseAddress!, count) == 0
    }
  }
  let stored = blocks.reduce(0) { $0 + $1.1 }
  return Measurement(
    ratio: Double(stored) / Double(count), encodeGBps: Double(count) / encodeBest / 1e9,
    decodeGBps: Double(count) / decodeBest / 1e9, roundTrip: roundTrip)
}

/// Appends `dataset` to a SpillFile in 16 MiB records, then reads them back in reverse order.
func measureSpillFile(_ dataset: Dataset, compression: SpillCompression, directory: String) throws
  -> (ratio: Double, appendGBps: Double, readGBps: Double, roundTrip: Bool)
{
  let file = try SpillFile(directory: directory, compression: compression)
  defer { try? file.remove() }
  let recordLength = 16 << 20
  let clock = ContinuousClock()
  var records: [SpillRecord] = []
  let appendTime = try dataset.bytes.withUnsafeBytes { data in
    try clock.measure {
      for start in stride(from: 0, to: data.count, by: recordLength) {
        let slice = UnsafeRawBufferPointer(rebasing: data[start..<min(start + recordLength, data.count)])
        records.append(try file.append(slice, elementWidth: dataset.elementWidth))
      }
    }
  }
  var readBack = [UInt8](repeating: 0, count: dataset.bytes.count)
  let readTime = try readBack.withUnsafeMutableBytes { buffer in
    try clock.measure {
      for (index, record) in records.enumerated().reversed() {
        let start = index * recordLength
        try file.read(
          record, into: UnsafeMutableRawBufferPointer(rebasing: buffer[start..<start + record.originalLength]))
      }
    }
  }
  let count = Double(dataset.bytes.count)
  return (
    Double(file.bytesOnDisk) / count, count / seconds(appendTime) / 1e9, count / seconds(readTime) / 1e9,
    readBack == dataset.bytes
  )
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
let byteCount = options.mebibytes << 20
var failures: [String] = []

print("Spill codec, \(options.mebibytes) MiB of each kind of data, blocks of \(blockLength >> 20) MiB, single thread, ")
print(
  "best of \(options.runs) runs; liblz4 \(BuildInfo.lz4Version); \(ProcessInfo.processInfo.activeProcessorCount) cores."
)
print()
print("| data | method | ratio | encode GB/s | decode GB/s |")
print("|---|---|---:|---:|---:|")
var bf16: Dataset?
for make in [Dataset.bf16, Dataset.fp32, Dataset.int8] {
  let dataset = make(byteCount)
  var ratios: [Method: Double] = [:]
  for method in Method.allCases {
    let result = try measure(dataset, method: method, runs: options.runs)
    ratios[method] = result.ratio
    print(
      "| \(dataset.name) | \(method.label) | \(String(format: "%.3f", result.ratio)) | "
        + "\(String(format: "%.2f", result.encodeGBps)) | \(String(format: "%.2f", result.decodeGBps)) |")
    if !result.roundTrip { failures.append("\(dataset.name) \(method.label): round trip differs") }
  }
  if dataset.elementWidth == 2 {
    if ratios[.planes]! >= 0.9 { failures.append("bf16 planes ratio \(ratios[.planes]!) is not below 0.9") }
    if ratios[.plainLZ4]! <= 0.99 { failures.append("bf16 plain LZ4 ratio \(ratios[.plainLZ4]!) is not above 0.99") }
    bf16 = dataset
  }
}

print()
print("SpillFile on bf16 weights: 16 MiB records appended, then read back in reverse order (in \(options.directory)).")
print()
print("| compression | bytes on disk / spilled | append GB/s | read GB/s |")
print("|---|---:|---:|---:|")
for compression in SpillCompression.allCases {
  let result = try measureSpillFile(bf16!, compression: compression, directory: options.directory)
  print(
    "| `\(compression.rawValue)` | \(String(format: "%.3f", result.ratio)) | "
      + "\(String(format: "%.2f", result.appendGBps)) | \(String(format: "%.2f", result.readGBps)) |")
  if !result.roundTrip { failures.append("SpillFile \(compression.rawValue): read back differs") }
}

if !failures.isEmpty {
  FileHandle.standardError.write(Data(("spill-bench: failed: " + failures.joined(separator: "; ") + "\n").utf8))
  exit(1)
}
