import Foundation
import Pickle
import SafeTensors
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The process's peak resident size, in bytes.
func peakResidentBytes() -> Int {
  var usage = rusage()
  #if os(Linux)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024  // kilobytes on Linux
  #else
    getrusage(RUSAGE_SELF, &usage)
    return usage.ru_maxrss  // bytes on macOS
  #endif
}

@Suite("Tensor data is never loaded by the reader")
struct ByteRangeTests {
  @Test("a 3 GiB storage is opened in a moment, with no growth of memory, as a byte range")
  func largeStorage() throws {
    let count = 3 << 28  // 3 GiB of float32
    let pickle = PickleWriter.stateDict([
      ("big", { $0.tensor(key: "0", count: count, shape: [count / 1024, 1024], strides: [1024, 1]) }),
      ("tail", { $0.tensor(key: "0", count: count, offset: count - 4, shape: [4], strides: [1]) }),
    ])
    var writer = TorchZipWriter(pickle: pickle, storages: [])
    writer.records.insert(.init(name: "archive/data/0", data: [], sparseSize: count * 4), at: 3)
    let path = temporaryDirectory().appendingPathComponent("big.pt").path
    try writer.writeSparse(to: path)
    defer { try? FileManager.default.removeItem(atPath: path) }
    let before = peakResidentBytes()
    let start = ContinuousClock.now
    let file = try PickleCheckpointFile(path: path)
    #expect(ContinuousClock.now - start < .seconds(1))
    #expect(peakResidentBytes() - before < 256 << 20)
    guard case .tensor(let big) = file.entries[0].value, case .tensor(let tail) = file.entries[1].value else {
      Issue.record("not tensors")
      return
    }
    let range = try #require(big.contiguousByteRange)
    #expect(range.count == count * 4 && range == big.storage.byteRange)
    #expect(tail.contiguousByteRange == range.upperBound - 16..<range.upperBound)
    // Reading a range reads just that range.
    #expect(try file.bytes(of: tail) == [UInt8](repeating: 0, count: 16))
  }
}
