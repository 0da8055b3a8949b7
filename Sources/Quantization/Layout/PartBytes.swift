/// Checks the parts handed to a `dequantize` against a layout.
enum PartBytes {
  /// The bytes of each part of `layout`, checked to be present with the planned size.
  ///
  /// - Throws: `invalidArgument` naming the first missing or mis-sized part.
  static func check(_ parts: [PartName: [UInt8]], against layout: QuantizedLayout) throws(QuantizationError) {
    for part in layout.parts {
      guard let bytes = parts[part.name], bytes.count == part.byteCount else {
        throw QuantizationError(
          .invalidArgument,
          "part \(part.name.rawValue) of shape \(layout.shape) needs \(part.byteCount) bytes, "
            + "got \(parts[part.name]?.count ?? 0)"
        )
      }
    }
  }

  /// Element `index` of an fp32 part.
  static func float32(_ bytes: [UInt8], _ index: Int) -> Float {
    bytes.withUnsafeBytes {
      Float(bitPattern: UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self)))
    }
  }

  /// Element `index` of fp32 part bytes.
  @inline(__always)
  static func float32(_ bytes: UnsafeRawBufferPointer, _ index: Int) -> Float {
    Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 &* index, as: UInt32.self)))
  }
}
