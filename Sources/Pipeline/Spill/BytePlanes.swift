/// Splits elements into byte planes and joins them back: plane `k` holds byte `k` (in little-endian order) of every
/// element.
///
/// Weights compress poorly as they are because every element mixes a sign/exponent byte, which repeats a lot, with
/// mantissa bytes, which look random; LZ4 finds no matches across that mix. Split into planes, the exponent planes
/// compress well and only the mantissa planes stay incompressible.
enum BytePlanes {
  /// Writes byte `k` of element `i` of `source` to `planes[k * count + i]`.
  ///
  /// - Parameters:
  ///   - source: `count * width` bytes of elements.
  ///   - planes: room for `count * width` bytes.
  ///   - count: how many elements.
  ///   - width: the element width, 1, 2, 4 or 8.
  static func split(_ source: UnsafeRawPointer, into planes: UnsafeMutableRawPointer, count: Int, width: Int) {
    switch width {
    case 2: split(source, into: planes, count: count, as: UInt16.self)
    case 4: split(source, into: planes, count: count, as: UInt32.self)
    case 8: split(source, into: planes, count: count, as: UInt64.self)
    default: planes.copyMemory(from: source, byteCount: count * width)
    }
  }

  /// Writes `planes[k * count + i]` to byte `k` of element `i` of `destination`; the inverse of ``split``.
  static func join(_ planes: UnsafeRawPointer, into destination: UnsafeMutableRawPointer, count: Int, width: Int) {
    switch width {
    case 2: join(planes, into: destination, count: count, as: UInt16.self)
    case 4: join(planes, into: destination, count: count, as: UInt32.self)
    case 8: join(planes, into: destination, count: count, as: UInt64.self)
    default: destination.copyMemory(from: planes, byteCount: count * width)
    }
  }

  // One loop per width, specialised, with no calls inside, so that the compiler unrolls the byte loop.
  private static func split<Element: FixedWidthInteger & UnsignedInteger>(
    _ source: UnsafeRawPointer, into planes: UnsafeMutableRawPointer, count: Int, as _: Element.Type
  ) {
    let output = planes.assumingMemoryBound(to: UInt8.self)
    for index in 0..<count {
      let element = source.loadUnaligned(fromByteOffset: index &* MemoryLayout<Element>.size, as: Element.self)
        .littleEndian
      for byte in 0..<MemoryLayout<Element>.size {
        output[byte &* count &+ index] = UInt8(truncatingIfNeeded: element &>> (byte &* 8))
      }
    }
  }

  private static func join<Element: FixedWidthInteger & UnsignedInteger>(
    _ planes: UnsafeRawPointer, into destination: UnsafeMutableRawPointer, count: Int, as _: Element.Type
  ) {
    let input = planes.assumingMemoryBound(to: UInt8.self)
    for index in 0..<count {
      var element: Element = 0
      for byte in 0..<MemoryLayout<Element>.size {
        element |= Element(input[byte &* count &+ index]) &<< (byte &* 8)
      }
      destination.storeBytes(
        of: element.littleEndian, toByteOffset: index &* MemoryLayout<Element>.size, as: Element.self)
    }
  }
}
