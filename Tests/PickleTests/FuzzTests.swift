import Foundation
import Testing

@testable import Pickle

/// A small seeded generator (SplitMix64), so that a failing mutant can be found again.
struct SplitMix64: RandomNumberGenerator {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

@Suite("Fuzzing the reader")
struct FuzzTests {
  /// Fixtures whose bytes are mutated: zip and legacy, plain and torchao, with views.
  static let seeds = ["plain.pt", "legacy.pt", "ao/int8dq/pytorch_model.bin", "aqt/int8dq.pt", "proto4.pt"]

  /// 5 seeds × 20 000 mutants, run as parallel test cases.
  @Test("100 000 seeded mutants of real checkpoints are read or refused, never crash or hang", arguments: 0..<5)
  func mutants(seed: Int) throws {
    let path = "mutant of \(Self.seeds[seed])"
    var generator = SplitMix64(state: UInt64(11 + seed))
    let original = Array(try Data(contentsOf: URL(fileURLWithPath: PickleFixtures.path(Self.seeds[seed]))))
    var outcomes: [Bool] = []
    for _ in 0..<20_000 {
      var bytes = original
      // Most mutants change the first kilobyte or two, where data.pkl and the legacy pickles are.
      let limit = Bool.random(using: &generator) ? min(bytes.count, 2048) : bytes.count
      for _ in 0...Int.random(in: 0..<4, using: &generator) {
        guard bytes.count > 1 else { break }
        let index = Int.random(in: 0..<min(limit, bytes.count), using: &generator)
        switch Int.random(in: 0..<4, using: &generator) {
        case 0: bytes[index] = UInt8.random(in: 0...255, using: &generator)
        case 1: bytes[index] ^= 1 << UInt8.random(in: 0..<8, using: &generator)
        case 2: bytes.insert(UInt8.random(in: 0...255, using: &generator), at: index)
        default: bytes.remove(at: index)
        }
      }
      if Int.random(in: 0..<16, using: &generator) == 0 {
        bytes.removeLast(Int.random(in: 0..<bytes.count, using: &generator))
      }
      do {
        // In memory: the same reader as for a file, without 100 000 file writes.
        let file = try PickleCheckpointFile(reader: FileReader(bytes: bytes, path: path))
        // What loads must be readable within the file.
        for entry in file.entries {
          for tensor in entry.tensors where tensor.byteCount < 1 << 20 { _ = try file.bytes(of: tensor) }
        }
        outcomes.append(true)
      } catch {
        #expect(error.file == path)
        outcomes.append(false)
      }
    }
    #expect(outcomes.count == 20_000)
    #expect(outcomes.contains(true) && outcomes.contains(false))
  }
}
