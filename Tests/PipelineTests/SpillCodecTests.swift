import Foundation
import Testing

@testable import Pipeline

@Suite("SpillCodec")
struct SpillCodecTests {
  static let codecs = [1, 2, 4, 8].flatMap { width in
    SpillCompression.allCases.map { SpillCodec(compression: $0, elementWidth: width) }
  }

  static let weights = SpillTestData.bf16Weights(count: 1_250_004, seed: 1)
  static let random = SpillTestData.randomBytes(count: 2_500_007, seed: 2)
  static let repeated = [UInt8](repeating: 7, count: 2_500_007)

  @Test(
    "a block decodes to the bytes it was encoded from, for every element width, compression and length",
    arguments: codecs)
  func roundTrip(codec: SpillCodec) throws {
    for length in [0, 1, 2, 3, 5, 7, 8, 9, 15, 17, 1023, 4097, 65_537, 2_500_007] {
      let sources = [Self.weights, Self.random, Self.repeated].map { Array($0.prefix(length)) }
      for source in sources {
        let block = source.withUnsafeBytes { codec.encode($0) }
        #expect(block.count <= codec.maximumEncodedLength(byteCount: length))
        #expect(block.count <= SpillBlockHeader.length(planeCount: 0) + length, "never longer than a raw block")
        #expect(try SpillTestData.decode(block, count: length) == source, "length \(length)")
      }
    }
  }

  @Test("incompressible random bytes are stored raw, within a header of their size", arguments: [1, 2, 4, 8])
  func randomBytesStayRaw(elementWidth: Int) throws {
    let source = SpillTestData.randomBytes(count: 1 << 20, seed: 3)
    let block = source.withUnsafeBytes { SpillCodec(compression: .lz4, elementWidth: elementWidth).encode($0) }
    #expect(block.count == source.count + SpillBlockHeader.length(planeCount: 0))
    #expect(block[4] == SpillBlockHeader.Method.raw.rawValue)
  }

  @Test("repetitive data compresses to a small fraction of its size", arguments: [1, 2, 4, 8])
  func repetitiveDataCompresses(elementWidth: Int) throws {
    let source = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 / 4096) }
    let block = source.withUnsafeBytes { SpillCodec(compression: .lz4, elementWidth: elementWidth).encode($0) }
    #expect(Double(block.count) / Double(source.count) < 0.02)
    #expect(try SpillTestData.decode(block, count: source.count) == source)
  }

  @Test("bf16 weights compress below 0.9 with byte planes while plain LZ4 stays above 0.99")
  func bf16PlanesCompress() throws {
    let source = SpillTestData.bf16Weights(count: 1 << 20, seed: 4)
    let planes = try ratio(source, SpillCodec(compression: .lz4, elementWidth: 2))
    let plain = try ratio(source, SpillCodec(compression: .lz4, elementWidth: 1))
    #expect(planes < 0.9)
    #expect(plain > 0.99)
  }

  @Test("fp32 weights compress below 0.95 with byte planes while plain LZ4 stays above 0.99")
  func fp32PlanesCompress() throws {
    let source = SpillTestData.fp32Weights(count: 1 << 20, seed: 5)
    let planes = try ratio(source, SpillCodec(compression: .lz4, elementWidth: 4))
    let plain = try ratio(source, SpillCodec(compression: .lz4, elementWidth: 1))
    #expect(planes < 0.95)
    #expect(plain > 0.99)
  }

  @Test("compression none stores every block raw")
  func noneStoresRaw() throws {
    let source = [UInt8](repeating: 0, count: 10_000)
    let block = source.withUnsafeBytes { SpillCodec(compression: .none, elementWidth: 2).encode($0) }
    #expect(block.count == source.count + SpillBlockHeader.length(planeCount: 0))
    #expect(try SpillTestData.decode(block, count: source.count) == source)
  }

  @Test(
    "a block with any single byte flipped throws, or at worst decodes to the original bytes",
    arguments: SpillCompression.allCases)
  func flippedByteThrows(compression: SpillCompression) throws {
    let source = SpillTestData.bf16Weights(count: 1500, seed: 6) + [0x42]
    let block = source.withUnsafeBytes { SpillCodec(compression: compression, elementWidth: 2).encode($0) }
    #expect(compression == .none || block[4] == SpillBlockHeader.Method.planes.rawValue, "the block uses planes")
    var detected = 0
    var flips = 0
    var wrongBytes: [String] = []
    var wrongErrors: [String] = []
    for index in block.indices {
      for flip: UInt8 in [0x01, 0x80, 0xFF] {
        var damaged = block
        damaged[index] ^= flip
        flips += 1
        do {
          // A flipped LZ4 match offset can point at equal bytes: harmless, and all the checksum can allow.
          if try SpillTestData.decode(damaged, count: source.count) != source {
            wrongBytes.append("\(index) ^ \(flip)")
          }
        } catch let error as SpillError where error.code == .corruptBlock {
          detected += 1
        } catch {
          wrongErrors.append("\(index) ^ \(flip): \(error)")
        }
      }
    }
    #expect(wrongBytes.isEmpty, "flipped bytes that decoded to different bytes without an error")
    #expect(wrongErrors.isEmpty)
    #expect(compression == .lz4 || detected == flips, "every flip of a raw block changes the bytes")
    #expect(detected >= flips * 99 / 100)
  }

  @Test("a flipped byte in a length field is reported as a header checksum mismatch")
  func flippedLengthThrows() throws {
    let source = SpillTestData.bf16Weights(count: 4096, seed: 7)
    let block = source.withUnsafeBytes { SpillCodec(compression: .lz4, elementWidth: 2).encode($0) }
    for index in [8, 12, 24, 28] {
      var damaged = block
      damaged[index] ^= 0x04
      let error = #expect(throws: SpillError.self) { try SpillTestData.decode(damaged, count: source.count) }
      #expect(error?.message.contains("header checksum") == true, "byte \(index)")
    }
  }

  @Test("every truncation of a block throws", arguments: SpillCompression.allCases)
  func truncatedBlockThrows(compression: SpillCompression) throws {
    let source = SpillTestData.bf16Weights(count: 700, seed: 8)
    let block = source.withUnsafeBytes { SpillCodec(compression: compression, elementWidth: 2).encode($0) }
    for length in 0..<block.count {
      #expect(throws: SpillError.self, "truncated to \(length)") {
        try SpillTestData.decode(Array(block.prefix(length)), count: source.count)
      }
    }
  }

  @Test("a block whose header checksum is valid but whose lengths lie throws instead of over-reading")
  func forgedLengthsThrow() throws {
    let source = SpillTestData.bf16Weights(count: 4096, seed: 9)
    let block = source.withUnsafeBytes { SpillCodec(compression: .lz4, elementWidth: 2).encode($0) }
    let header = try block.withUnsafeBytes { try SpillBlockHeader.parse($0) }
    let payload = Array(block[header.length...])
    var forgeries: [SpillBlockHeader] = []
    var shifted = header
    shifted.planeLengths[0] -= 1
    shifted.planeLengths[1] += 1
    forgeries.append(shifted)
    var longer = header
    longer.payloadLength += 1
    forgeries.append(longer)
    var larger = header
    larger.originalLength += 2
    larger.planeLengths[1] = header.planeLengths[1] + 1
    forgeries.append(larger)
    var raw = header
    raw.method = .raw
    raw.planeLengths = []
    forgeries.append(raw)
    for forged in forgeries {
      var bytes = [UInt8](repeating: 0, count: forged.length)
      bytes.withUnsafeMutableBytes { forged.write(to: $0.baseAddress!) }
      let error = #expect(throws: SpillError.self, "\(forged)") {
        try SpillTestData.decode(bytes + payload, count: source.count)
      }
      #expect(error?.code == .corruptBlock)
    }
  }

  @Test("decoding into a buffer of the wrong size throws")
  func wrongDestinationThrows() throws {
    let block = [UInt8](repeating: 1, count: 100).withUnsafeBytes {
      SpillCodec(compression: .lz4, elementWidth: 1).encode($0)
    }
    #expect(throws: SpillError.self) { try SpillTestData.decode(block, count: 99) }
    #expect(throws: SpillError.self) { try SpillTestData.decode(block, count: 101) }
  }

  static let xxh64References: [([UInt8], UInt64)] = [
    ([], 0xEF46_DB37_51D8_E999),
    (Array("abc".utf8), 0x44BC_2CF5_AD77_0999),
    (Array("Nobody inspects the spammish repetition".utf8), 0xFBCE_A83C_8A37_8BF1),
    ((0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }, 0x5F23_5FA0_33F1_A3FB),
  ]

  @Test("XXH64 matches the reference implementation", arguments: xxh64References)
  func xxh64ReferenceValues(bytes: [UInt8], expected: UInt64) {
    #expect(bytes.withUnsafeBytes { XXH64.hash($0) } == expected)
  }

  @Test("byte planes hold byte k of every element in plane k")
  func planeLayout() {
    let source: [UInt8] = [0x10, 0x11, 0x12, 0x13, 0x20, 0x21, 0x22, 0x23, 0x30, 0x31, 0x32, 0x33]
    var planes = [UInt8](repeating: 0, count: 12)
    var joined = [UInt8](repeating: 0, count: 12)
    source.withUnsafeBytes { source in
      planes.withUnsafeMutableBytes { BytePlanes.split(source.baseAddress!, into: $0.baseAddress!, count: 3, width: 4) }
    }
    #expect(planes == [0x10, 0x20, 0x30, 0x11, 0x21, 0x31, 0x12, 0x22, 0x32, 0x13, 0x23, 0x33])
    planes.withUnsafeBytes { planes in
      joined.withUnsafeMutableBytes { BytePlanes.join(planes.baseAddress!, into: $0.baseAddress!, count: 3, width: 4) }
    }
    #expect(joined == source)
  }

  /// The encoded size over the original size, after checking the round trip.
  private func ratio(_ source: [UInt8], _ codec: SpillCodec) throws -> Double {
    let block = source.withUnsafeBytes { codec.encode($0) }
    #expect(try SpillTestData.decode(block, count: source.count) == source)
    return Double(block.count) / Double(source.count)
  }
}

/// Seeded test data shaped like what gets spilled.
enum SpillTestData {
  /// SplitMix64: small, fast, and the same sequence on every platform.
  struct Generator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
  }

  static func randomBytes(count: Int, seed: UInt64) -> [UInt8] {
    var generator = Generator(state: seed)
    let words = (0..<(count + 7) / 8).map { _ in generator.next() }
    return words.withUnsafeBytes { Array($0.prefix(count)) }
  }

  /// Normally distributed values with standard deviation 0.02, like a layer's weights (Box–Muller).
  static func gaussian(count: Int, seed: UInt64) -> [Float] {
    var generator = Generator(state: seed)
    return (0..<count).map { _ in
      let u = Double.random(in: Double.leastNonzeroMagnitude..<1, using: &generator)
      let v = Double.random(in: 0..<1, using: &generator)
      return Float(0.02 * (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v))
    }
  }

  /// `count` bf16 weights (little-endian), rounded to nearest even from fp32.
  static func bf16Weights(count: Int, seed: UInt64) -> [UInt8] {
    gaussian(count: count, seed: seed).flatMap { value -> [UInt8] in
      let bits = value.bitPattern
      let rounded = UInt16((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16)
      return [UInt8(rounded & 0xFF), UInt8(rounded >> 8)]
    }
  }

  /// `count` fp32 weights (little-endian).
  static func fp32Weights(count: Int, seed: UInt64) -> [UInt8] {
    gaussian(count: count, seed: seed).flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init)
    }
  }

  /// Decodes `block` into a new array of `count` bytes.
  static func decode(_ block: [UInt8], count: Int) throws -> [UInt8] {
    var result = [UInt8](repeating: 0, count: count)
    try block.withUnsafeBytes { block in
      try result.withUnsafeMutableBytes { try SpillCodec.decode(block, into: $0) }
    }
    return result
  }
}
