import Foundation
import SafeTensors
import Testing

/// A seeded mutation fuzzer over the header decoder: 100,000 mutants of valid files must each be
/// either decoded or refused with a ``SafeTensorsError``, never crash, hang or allocate what a
/// length field claims. Every decoded mutant must re-encode to a header that decodes the same.
@Suite struct HeaderFuzzTests {
  static let cases = 100_000

  static func seeds() throws -> [[UInt8]] {
    var seeds = try ["every_dtype", "scalars_and_empty", "unicode_metadata", "empty_file"].map {
      try TestFiles.read(TestFiles.fixtures.appendingPathComponent("golden/\($0).safetensors"))
    }
    // Small seeds too, so that mutations reach the data-length and offset rules often.
    let header = try SafeTensorsHeader(
      metadata: ["k": "v"],
      tensors: [TensorSpec(name: "a", dtype: .f32, shape: [2]), TensorSpec(name: "b", dtype: .u8, shape: [3])])
    seeds.append(header.encoded() + [UInt8](repeating: 7, count: 11))
    return seeds
  }

  static let interesting: [UInt8] =
    Array(#"{}[]",:"0123456789-.eE\ u"#.utf8) + [0x00, 0x7F, 0x80, 0xC0, 0xED, 0xF4, 0xFF]

  static func mutate(_ seed: [UInt8], _ random: inout SeededBytes) -> [UInt8] {
    var bytes = seed
    for _ in 0..<(1 + random.below(4)) {
      let position = bytes.isEmpty ? 0 : random.below(bytes.count)
      switch random.below(9) {
      case 0 where !bytes.isEmpty: bytes[position] ^= UInt8(1 << random.below(8))
      case 1 where !bytes.isEmpty: bytes[position] = interesting[random.below(interesting.count)]
      case 2: bytes.insert(interesting[random.below(interesting.count)], at: position)
      case 3 where !bytes.isEmpty: bytes.removeSubrange(position..<min(bytes.count, position + 1 + random.below(8)))
      case 4: bytes.removeSubrange(min(bytes.count, random.below(bytes.count + 1))...)
      case 5 where bytes.count > 8:
        // Repeat a run of the header: duplicate keys, deep nesting, long strings.
        let end = min(bytes.count, position + 1 + random.below(24))
        let run = Array(bytes[position..<end])
        bytes.insert(contentsOf: Array(repeatElement(run, count: 1 + random.below(40)).joined()), at: position)
      case 6 where bytes.count >= 8:
        // A length prefix that lies: small, huge, or one off.
        let choices: [UInt64] = [
          0, 1, UInt64(bytes.count), UInt64(bytes.count - 8), 100_000_000, .max, UInt64(random.next()),
        ]
        withUnsafeBytes(of: choices[random.below(choices.count)].littleEndian) {
          bytes.replaceSubrange(0..<8, with: $0)
        }
      case 7 where bytes.count >= 8:
        // Keep the prefix consistent with a mutated header so the JSON rules get exercised.
        let length = UInt64(bytes.count - 8 - random.below(min(bytes.count - 8, 16) + 1))
        withUnsafeBytes(of: length.littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
      default:
        // Digits into numbers: overflowing offsets and shapes.
        bytes.insert(contentsOf: Array(String(random.next()).utf8), at: position)
      }
    }
    return bytes
  }

  @Test func mutatedHeadersAreDecodedOrRefusedNeverCrash() throws {
    var random = SeededBytes(seed: 0x5AFE_5A4D)
    let seeds = try Self.seeds()
    var accepted = 0
    var refused: [SafeTensorsError.Code: Int] = [:]
    for _ in 0..<Self.cases {
      let mutant = Self.mutate(seeds[random.below(seeds.count)], &random)
      do {
        let header = try mutant.withUnsafeBytes { try SafeTensorsHeader.decode(file: $0) }
        accepted += 1
        // A decoded header is self-consistent: re-encoded, it decodes to the same tensors.
        let again = try header.encoded().withUnsafeBytes { prefix in
          try SafeTensorsHeader.decode(json: UnsafeRawBufferPointer(rebasing: prefix[8...]))
        }
        #expect(again == header)
        #expect(header.dataLength <= mutant.count)
      } catch let error as SafeTensorsError {
        refused[error.code, default: 0] += 1
      } catch {
        Issue.record("a mutant raised \(error), which is not a SafeTensorsError")
      }
    }
    // The mutants reach deep into the decoder, not just the length check.
    #expect(accepted > Self.cases / 100)
    for code: SafeTensorsError.Code in [.headerSyntax, .headerLength, .incompleteBuffer, .sizeMismatch, .duplicateKey] {
      #expect(refused[code, default: 0] > 0, "no mutant was refused for \(code)")
    }
  }

  @Test func mutatedFilesOnDiskAreDecodedOrRefusedNeverCrash() throws {
    var random = SeededBytes(seed: 42)
    let seeds = try Self.seeds()
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    let url = directory.appendingPathComponent("mutant.safetensors")
    for _ in 0..<1_000 {
      let mutant = Self.mutate(seeds[random.below(seeds.count)], &random)
      try TestFiles.write(mutant, to: url)
      let inMemory = Result { try mutant.withUnsafeBytes { try SafeTensorsHeader.decode(file: $0) } }
      let fromFile = Result { try SafeTensorsFile(path: url.path).header }
      switch (inMemory, fromFile) {
      case (.success(let a), .success(let b)): #expect(a == b)
      case (.failure(let a as SafeTensorsError), .failure(let b as SafeTensorsError)): #expect(a.code == b.code)
      default: Issue.record("the file reader and the in-memory decoder disagree on a mutant")
      }
    }
  }
}
