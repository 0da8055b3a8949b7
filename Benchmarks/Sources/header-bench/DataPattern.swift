import SafeTensors

/// The bytes the read benchmark writes: one 64-bit word per 8 bytes of the data section, a
/// function of its offset, so a reader can check what it got without keeping a copy.
enum DataPattern {
  /// The stride at which readers sample a word: one per page.
  static let sampleStride = 4096

  /// The little-endian word at data offset `offset` (a multiple of 8).
  static func word(at offset: Int) -> UInt64 {
    (UInt64(offset) &* 0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03
  }

  /// Fills `buffer` with the words from data offset `offset` (both multiples of 8).
  static func fill(_ buffer: UnsafeMutableRawBufferPointer, from offset: Int) {
    let words = buffer.bindMemory(to: UInt64.self)
    for index in words.indices {
      words[index] = word(at: offset + 8 * index).littleEndian
    }
  }

  /// XORs the word at the start of each page of `piece` into `sum`; the range reads' only work
  /// on the bytes, so that they cannot be optimised away.
  @inline(__always)
  static func sample(_ piece: UnsafeRawBufferPointer, into sum: inout UInt64) {
    var position = 0
    while position + 8 <= piece.count {
      sum ^= piece.load(fromByteOffset: position, as: UInt64.self)
      position += sampleStride
    }
  }

  /// What ``sample(_:into:)`` gives over all of `tensors`' data read in pieces whose sizes are
  /// multiples of ``sampleStride``.
  static func expectedSample(of tensors: [TensorInfo]) -> UInt64 {
    var sum: UInt64 = 0
    for tensor in tensors {
      var position = 0
      while position + 8 <= tensor.byteCount {
        sum ^= word(at: tensor.dataOffsets.lowerBound + position).littleEndian
        position += sampleStride
      }
    }
    return sum
  }
}
