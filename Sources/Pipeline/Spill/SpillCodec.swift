import CLZ4

/// Encodes staging data into self-checking spill blocks and decodes them back.
///
/// With ``SpillCompression/lz4`` a block splits each element's bytes into planes (one per byte position within an
/// element), compresses each plane separately with LZ4, stores a plane raw when LZ4 does not shrink it, and stores the
/// whole block raw when that is smaller. LZ4 alone hardly shrinks weights (ratio ≈ 1.00 on fp32, bf16 and int8); the
/// sign/exponent planes compress and the mantissa planes do not, which gives about 0.84 on bf16. With
/// ``SpillCompression/none`` every block is raw. Every block carries an XXH64 hash of its original bytes, so a damaged
/// spill file is detected when it is read back, never decoded silently. The block layout is described in
/// `SpillBlockHeader.swift`.
///
/// Decoding does not depend on the codec's settings: a block says how it was written.
public struct SpillCodec: Sendable, Hashable {
  /// How blocks are stored.
  public let compression: SpillCompression
  /// The byte width of the data's elements: 1, 2, 4 or 8. Each byte position within an element becomes a plane.
  public let elementWidth: Int

  /// The most original bytes one block can hold: LZ4's input limit, `LZ4_MAX_INPUT_SIZE` (about 1.97 GiB).
  public static let maximumBlockLength = Int(LZ4_MAX_INPUT_SIZE)

  /// Creates a codec.
  ///
  /// - Parameters:
  ///   - compression: how blocks are stored.
  ///   - elementWidth: the byte width of the data's elements; must be 1, 2, 4 or 8.
  public init(compression: SpillCompression, elementWidth: Int) {
    precondition([1, 2, 4, 8].contains(elementWidth), "spill element width must be 1, 2, 4 or 8, not \(elementWidth)")
    self.compression = compression
    self.elementWidth = elementWidth
  }

  /// The most bytes ``encode(_:into:)`` can need for `byteCount` original bytes (the finished block is never longer
  /// than a raw block, 28 bytes plus `byteCount`, but encoding needs room for the plane lengths while it tries).
  public func maximumEncodedLength(byteCount: Int) -> Int {
    SpillBlockHeader.length(planeCount: compression == .lz4 ? elementWidth : 0) + byteCount
  }

  /// Encodes `bytes` as one block at the start of `output` and returns the block's length.
  ///
  /// Splitting into planes takes temporary memory of `bytes.count`, so keep blocks small (``SpillFile`` uses 1 MiB);
  /// LZ4's window is 64 KiB, so larger blocks compress no better.
  ///
  /// - Parameters:
  ///   - bytes: at most ``maximumBlockLength`` bytes, any length (a tail shorter than an element is stored raw).
  ///   - output: room for at least ``maximumEncodedLength(byteCount:)`` bytes.
  /// - Returns: the number of bytes of `output` the block fills.
  public func encode(_ bytes: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int {
    precondition(bytes.count <= Self.maximumBlockLength, "a spill block holds at most \(Self.maximumBlockLength) bytes")
    precondition(output.count >= maximumEncodedLength(byteCount: bytes.count), "spill block output buffer too small")
    let checksum = XXH64.hash(bytes)
    let planeLength = bytes.count / elementWidth
    if compression == .lz4, planeLength > 0,
      let length = encodePlanes(bytes, planeLength: planeLength, checksum: checksum, into: output)
    {
      return length
    }
    let header = SpillBlockHeader(
      method: .raw, elementWidth: elementWidth, originalLength: bytes.count, payloadLength: bytes.count,
      checksum: checksum, planeLengths: [])
    header.write(to: output.baseAddress!)
    if bytes.count > 0 {
      (output.baseAddress! + header.length).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
    }
    return header.blockLength
  }

  /// Encodes `bytes` as one block.
  ///
  /// - Parameter bytes: at most ``maximumBlockLength`` bytes, any length.
  /// - Returns: the block.
  public func encode(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
    [UInt8](unsafeUninitializedCapacity: maximumEncodedLength(byteCount: bytes.count)) { buffer, count in
      count = encode(bytes, into: UnsafeMutableRawBufferPointer(buffer))
    }
  }

  /// Decodes one block into `destination`, checking it on the way.
  ///
  /// Every length in the block is checked against the block's size and `destination`'s before it is used, LZ4 runs in
  /// its bounds-checked mode (`LZ4_decompress_safe`) and must produce exactly a plane's length, and the decoded bytes
  /// must match the block's XXH64 hash. A damaged or truncated block throws; it never reads or writes out of bounds.
  ///
  /// - Parameters:
  ///   - block: exactly one block, as ``encode(_:into:)`` wrote it.
  ///   - destination: exactly the block's original length.
  /// - Throws: ``SpillError/Code/corruptBlock`` when any check fails (the error names no file; ``SpillFile`` adds it).
  ///   `destination` may then hold partly decoded bytes.
  public static func decode(_ block: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer)
    throws(SpillError)
  {
    let header = try SpillBlockHeader.parse(block)
    guard header.blockLength == block.count else {
      throw SpillError(.corruptBlock, "block is \(block.count) bytes, but its header describes \(header.blockLength)")
    }
    guard header.originalLength == destination.count else {
      throw SpillError(
        .corruptBlock, "block holds \(header.originalLength) bytes, but \(destination.count) were expected")
    }
    let payload = UnsafeRawBufferPointer(rebasing: block[header.length...])
    switch header.method {
    case .raw:
      if payload.count > 0 { destination.baseAddress!.copyMemory(from: payload.baseAddress!, byteCount: payload.count) }
    case .planes:
      try decodePlanes(payload, header: header, into: destination)
    }
    guard XXH64.hash(UnsafeRawBufferPointer(destination)) == header.checksum else {
      throw SpillError(.corruptBlock, "checksum of the decoded bytes does not match the block's")
    }
  }

  /// Writes a plane block to `output`, or returns nil when a raw block would be no longer.
  private func encodePlanes(
    _ bytes: UnsafeRawBufferPointer, planeLength: Int, checksum: UInt64, into output: UnsafeMutableRawBufferPointer
  ) -> Int? {
    let headerLength = SpillBlockHeader.length(planeCount: elementWidth)
    let base = output.baseAddress!
    var planeLengths = [Int](repeating: 0, count: elementWidth)
    var payloadLength = 0
    withPlanes(of: bytes, planeLength: planeLength) { planes in
      for plane in 0..<elementWidth {
        let source = planes + plane * planeLength
        let target = base + headerLength + payloadLength
        // Room for one byte less than the plane: LZ4 gives up (returns 0) when the plane would not shrink.
        let compressed = LZ4_compress_default(
          source.assumingMemoryBound(to: CChar.self), target.assumingMemoryBound(to: CChar.self), Int32(planeLength),
          Int32(planeLength - 1))
        if compressed > 0 {
          planeLengths[plane] = Int(compressed)
        } else {
          target.copyMemory(from: source, byteCount: planeLength)
          planeLengths[plane] = planeLength
        }
        payloadLength += planeLengths[plane]
      }
    }
    let tail = bytes.count - planeLength * elementWidth
    guard headerLength + payloadLength + tail < SpillBlockHeader.length(planeCount: 0) + bytes.count else { return nil }
    if tail > 0 {
      (base + headerLength + payloadLength).copyMemory(from: bytes.baseAddress! + bytes.count - tail, byteCount: tail)
    }
    let header = SpillBlockHeader(
      method: .planes, elementWidth: elementWidth, originalLength: bytes.count, payloadLength: payloadLength + tail,
      checksum: checksum, planeLengths: planeLengths)
    header.write(to: base)
    return header.blockLength
  }

  /// Calls `body` with the planes of `bytes`' whole elements, one after the other, `planeLength` bytes each.
  private func withPlanes(of bytes: UnsafeRawBufferPointer, planeLength: Int, _ body: (UnsafeRawPointer) -> Void) {
    guard elementWidth > 1 else { return body(bytes.baseAddress!) }
    withUnsafeTemporaryAllocation(byteCount: planeLength * elementWidth, alignment: 64) { planes in
      BytePlanes.split(bytes.baseAddress!, into: planes.baseAddress!, count: planeLength, width: elementWidth)
      body(planes.baseAddress!)
    }
  }

  private static func decodePlanes(
    _ payload: UnsafeRawBufferPointer, header: SpillBlockHeader, into destination: UnsafeMutableRawBufferPointer
  ) throws(SpillError) {
    let width = header.elementWidth
    let planeLength = header.originalLength / width
    let tail = header.originalLength - planeLength * width
    if planeLength > 0 {
      if width == 1 {
        try decodePlanes(payload, header: header, planeLength: planeLength, into: destination.baseAddress!)
      } else {
        try withUnsafeTemporaryAllocation(byteCount: planeLength * width, alignment: 64) { planes throws(SpillError) in
          try decodePlanes(payload, header: header, planeLength: planeLength, into: planes.baseAddress!)
          BytePlanes.join(planes.baseAddress!, into: destination.baseAddress!, count: planeLength, width: width)
        }
      }
    }
    if tail > 0 {
      (destination.baseAddress! + planeLength * width).copyMemory(
        from: payload.baseAddress! + payload.count - tail, byteCount: tail)
    }
  }

  /// Decodes each plane of `payload` into `planes`, one after the other, `planeLength` bytes each.
  private static func decodePlanes(
    _ payload: UnsafeRawBufferPointer, header: SpillBlockHeader, planeLength: Int, into planes: UnsafeMutableRawPointer
  ) throws(SpillError) {
    // SpillBlockHeader.parse checked that the plane lengths add up to the payload, each at most planeLength.
    var offset = 0
    for (plane, storedLength) in header.planeLengths.enumerated() {
      let source = payload.baseAddress! + offset
      let target = planes + plane * planeLength
      if storedLength == planeLength {
        target.copyMemory(from: source, byteCount: planeLength)
      } else {
        let decoded = LZ4_decompress_safe(
          source.assumingMemoryBound(to: CChar.self), target.assumingMemoryBound(to: CChar.self), Int32(storedLength),
          Int32(planeLength))
        guard decoded == planeLength else {
          throw SpillError(
            .corruptBlock,
            "plane \(plane) does not decode: LZ4 returned \(decoded) for \(storedLength) bytes, expected \(planeLength)"
          )
        }
      }
      offset += storedLength
    }
  }
}
