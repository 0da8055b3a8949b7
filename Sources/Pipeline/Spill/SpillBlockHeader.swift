/// The header of one spill block, and its validation.
///
/// Layout, all integers little-endian:
///
/// | offset | size | field |
/// |---:|---:|---|
/// | 0 | 3 | magic `SPL` |
/// | 3 | 1 | format version, 1 |
/// | 4 | 1 | method: 0 raw, 1 byte planes each LZ4-compressed or raw |
/// | 5 | 1 | element width: 1, 2, 4 or 8 |
/// | 6 | 2 | zero |
/// | 8 | 4 | original length in bytes |
/// | 12 | 4 | payload length: the bytes after the header |
/// | 16 | 8 | XXH64 of the original bytes |
/// | 24 | 4 × planes | stored length of each plane (method 1 only: one plane per byte of the element width) |
/// | 24 + 4 × planes | 4 | low 32 bits of the XXH64 of the header bytes before it |
///
/// The payload of a raw block is the original bytes. The payload of a plane block is each plane in order (a plane's
/// stored length equals its length, original length / element width, when it is stored raw, and is smaller when it
/// is an LZ4 block), then the last original length % element width bytes, raw.
struct SpillBlockHeader {
  /// How the payload stores the original bytes.
  enum Method: UInt8 {
    /// The payload is the original bytes.
    case raw = 0
    /// The payload is the byte planes, each an LZ4 block or raw, then the tail bytes raw.
    case planes = 1
  }

  /// The first three bytes of every block, `SPL`.
  static let magic: [UInt8] = [0x53, 0x50, 0x4C]
  /// The format version this code writes and reads.
  static let version: UInt8 = 1
  /// The size of the fields before the plane lengths.
  static let fixedLength = 24
  /// The longest header: eight plane lengths.
  static let maximumLength = length(planeCount: 8)

  /// The header's length for a block with `planeCount` plane lengths.
  static func length(planeCount: Int) -> Int { fixedLength + 4 * planeCount + 4 }

  var method: Method
  var elementWidth: Int
  var originalLength: Int
  var payloadLength: Int
  var checksum: UInt64
  /// Each plane's stored length; empty for a raw block.
  var planeLengths: [Int]

  /// The header's length in bytes.
  var length: Int { Self.length(planeCount: planeLengths.count) }

  /// The whole block's length: header and payload.
  var blockLength: Int { length + payloadLength }

  /// Writes the header to the start of `buffer`, which must have room for ``length`` bytes.
  func write(to buffer: UnsafeMutableRawPointer) {
    for (index, byte) in Self.magic.enumerated() { buffer.storeBytes(of: byte, toByteOffset: index, as: UInt8.self) }
    buffer.storeBytes(of: Self.version, toByteOffset: 3, as: UInt8.self)
    buffer.storeBytes(of: method.rawValue, toByteOffset: 4, as: UInt8.self)
    buffer.storeBytes(of: UInt8(elementWidth), toByteOffset: 5, as: UInt8.self)
    buffer.storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)
    buffer.storeBytes(of: UInt32(originalLength).littleEndian, toByteOffset: 8, as: UInt32.self)
    buffer.storeBytes(of: UInt32(payloadLength).littleEndian, toByteOffset: 12, as: UInt32.self)
    buffer.storeBytes(of: checksum.littleEndian, toByteOffset: 16, as: UInt64.self)
    for (index, planeLength) in planeLengths.enumerated() {
      buffer.storeBytes(
        of: UInt32(planeLength).littleEndian, toByteOffset: Self.fixedLength + 4 * index, as: UInt32.self)
    }
    let checked = length - 4
    let headerChecksum = UInt32(truncatingIfNeeded: XXH64.hash(UnsafeRawBufferPointer(start: buffer, count: checked)))
    buffer.storeBytes(of: headerChecksum.littleEndian, toByteOffset: checked, as: UInt32.self)
  }

  /// Reads and validates the header at the start of `bytes`, which may hold more than the header.
  ///
  /// Checks the magic, version, method, element width, the header's own checksum, and that the lengths agree with
  /// each other: a raw payload is the original length, plane lengths are at most a plane's length and add up, with
  /// the tail, to the payload length.
  ///
  /// - Throws: ``SpillError/Code/corruptBlock`` naming the first check that fails.
  static func parse(_ bytes: UnsafeRawBufferPointer) throws(SpillError) -> SpillBlockHeader {
    guard bytes.count >= length(planeCount: 0) else {
      throw SpillError(.corruptBlock, "block is truncated: \(bytes.count) bytes, shorter than a block header")
    }
    guard bytes.prefix(3).elementsEqual(magic) else {
      throw SpillError(.corruptBlock, "not a spill block: the magic bytes are not 'SPL'")
    }
    guard bytes[3] == version else {
      throw SpillError(.corruptBlock, "unsupported spill block version \(bytes[3]) (this build reads \(version))")
    }
    guard let method = Method(rawValue: bytes[4]) else {
      throw SpillError(.corruptBlock, "unknown spill block method \(bytes[4])")
    }
    let elementWidth = Int(bytes[5])
    guard [1, 2, 4, 8].contains(elementWidth), bytes[6] == 0, bytes[7] == 0 else {
      throw SpillError(.corruptBlock, "invalid element width \(elementWidth) or reserved bytes in the block header")
    }
    let planeCount = method == .planes ? elementWidth : 0
    let headerLength = length(planeCount: planeCount)
    guard bytes.count >= headerLength else {
      throw SpillError(
        .corruptBlock, "block is truncated: \(bytes.count) bytes, shorter than its \(headerLength)-byte header")
    }
    let checked = headerLength - 4
    let headerChecksum = UInt32(truncatingIfNeeded: XXH64.hash(UnsafeRawBufferPointer(rebasing: bytes.prefix(checked))))
    guard headerChecksum == word(bytes, at: checked) else {
      throw SpillError(.corruptBlock, "block header checksum does not match")
    }
    let header = SpillBlockHeader(
      method: method, elementWidth: elementWidth, originalLength: Int(word(bytes, at: 8)),
      payloadLength: Int(word(bytes, at: 12)),
      checksum: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
      planeLengths: (0..<planeCount).map { Int(word(bytes, at: fixedLength + 4 * $0)) })
    try header.validateLengths()
    return header
  }

  private func validateLengths() throws(SpillError) {
    switch method {
    case .raw:
      guard payloadLength == originalLength else {
        throw SpillError(
          .corruptBlock, "raw block payload is \(payloadLength) bytes, but its original length is \(originalLength)")
      }
    case .planes:
      let planeLength = originalLength / elementWidth
      // Each length is below 2^32 and there are at most 8, so the sum cannot overflow.
      let stored = planeLengths.reduce(originalLength % elementWidth, +)
      guard planeLengths.allSatisfy({ $0 <= planeLength }), stored == payloadLength else {
        throw SpillError(
          .corruptBlock,
          "plane lengths \(planeLengths) do not fit a payload of \(payloadLength) bytes for \(originalLength) "
            + "original bytes of width \(elementWidth)")
      }
    }
  }

  private static func word(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
    UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
  }
}
