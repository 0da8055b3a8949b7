import Quantization

/// Test helpers over byte arrays.
enum Buffers {
  /// The little-endian bytes of `values` in `format` (rounded to it).
  static func bytes(_ values: [Float], as format: FloatFormat) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: values.count * format.byteWidth)
    bytes.withUnsafeMutableBytes { buffer in
      for (index, value) in values.enumerated() { format.store(value, at: index, in: buffer) }
    }
    return bytes
  }

  /// The values of `bytes` read as `format`.
  static func floats(_ bytes: [UInt8], as format: FloatFormat) -> [Float] {
    bytes.withUnsafeBytes { buffer in
      (0..<bytes.count / format.byteWidth).map { format.value(at: $0, in: buffer.baseAddress!) }
    }
  }

  /// Deterministic pseudo-random values: a Gaussian-like spread of magnitudes around `scale`.
  static func randomValues(count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<count).map { _ in
      state ^= state << 13
      state ^= state >> 7
      state ^= state << 17
      let uniform = Float(state >> 40) / Float(1 << 24) - 0.5
      return uniform * scale * (1 + Float((state >> 20) & 7))
    }
  }

  /// Quantizes `input` of `shape` chunk by chunk along `cuts` (row boundaries, ascending, without
  /// 0 and the row count), gathering the statistic first, and returns the assembled parts.
  static func quantizeInChunks(
    _ scheme: any QuantizationScheme, _ input: [UInt8], shape: [Int], cuts: [Int]
  ) throws -> [PartName: [UInt8]] {
    let layout = try scheme.outputLayout(shape: shape)
    let rowBytes = layout.rowLength * scheme.source.byteWidth
    let bounds = [0] + cuts + [layout.rowCount]
    var statistic = try scheme.makeStatistic(shape: shape)
    if statistic != nil {
      // Gather on two partial statistics and merge them, as concurrent chunks would.
      var other = try scheme.makeStatistic(shape: shape)!
      for (index, (start, end)) in zip(bounds, bounds.dropFirst()).enumerated() {
        try input[start * rowBytes..<end * rowBytes].withUnsafeBytes { bytes in
          if index % 2 == 0 {
            try statistic!.accumulate(bytes, firstRow: start)
          } else {
            try other.accumulate(bytes, firstRow: start)
          }
        }
      }
      try statistic!.merge(other)
    }
    var result = try scheme.tensorParts(shape: shape, statistic: statistic)
    // Fill every buffer with 0xA5 so that a byte the kernel forgets to write shows up.
    func garbage(_ count: Int) -> UnsafeMutableRawBufferPointer {
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 8)
      buffer.initializeMemory(as: UInt8.self, repeating: 0xA5)
      return buffer
    }
    var gathered: [PartName: UnsafeMutableRawBufferPointer] = [:]
    for part in layout.parts where part.placement == .gathered { gathered[part.name] = garbage(part.byteCount) }
    defer { gathered.values.forEach { $0.deallocate() } }
    for part in layout.parts where part.placement != .tensor && part.placement != .gathered {
      result[part.name] = [UInt8](repeating: 0xA5, count: part.byteCount)
    }
    // Back to front, so that nothing depends on chunks arriving in order.
    for (start, end) in zip(bounds, bounds.dropFirst()).reversed() {
      var pieces = gathered
      for part in layout.parts where part.placement != .tensor && part.placement != .gathered {
        pieces[part.name] = garbage(part.byteRange(rows: start..<end).count)
      }
      defer { for part in layout.parts where gathered[part.name] == nil { pieces[part.name]?.deallocate() } }
      try input[start * rowBytes..<end * rowBytes].withUnsafeBytes { bytes in
        try scheme.quantize(bytes, shape: shape, rows: start..<end, statistic: statistic, into: pieces)
      }
      for part in layout.parts where part.placement != .tensor && part.placement != .gathered {
        result[part.name]!.replaceSubrange(
          part.byteRange(rows: start..<end), with: UnsafeRawBufferPointer(pieces[part.name]!))
      }
    }
    for (name, buffer) in gathered { result[name] = Array(UnsafeRawBufferPointer(buffer)) }
    return result
  }
}
