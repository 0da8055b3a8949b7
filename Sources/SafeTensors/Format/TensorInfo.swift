/// One tensor of a safetensors file: its name, element type, shape and where its bytes are.
public struct TensorInfo: Sendable, Hashable {
  /// The tensor's name, the key of its header entry.
  public var name: String
  /// The element type.
  public var dtype: DType
  /// The shape; `[]` is a scalar.
  public var shape: [Int]
  /// The byte range of the data, relative to the start of the data section (`data_offsets`).
  public var dataOffsets: Range<Int>

  /// Creates a tensor entry.
  public init(name: String, dtype: DType, shape: [Int], dataOffsets: Range<Int>) {
    self.name = name
    self.dtype = dtype
    self.shape = shape
    self.dataOffsets = dataOffsets
  }

  /// The number of data bytes.
  public var byteCount: Int { dataOffsets.count }

  /// The number of elements (1 for a scalar). A shape with a zero dimension has none, however
  /// large its other dimensions.
  ///
  /// - Precondition: no dimension is negative and the count fits in `Int`. A decoded header
  ///   guarantees both (the count is bounded by the validated byte size); a hand-built entry
  ///   that breaks them traps here rather than giving a wrong count.
  public var elementCount: Int {
    guard !shape.contains(0) else { return 0 }
    guard shape.allSatisfy({ $0 > 0 }), let count = SafeTensors.elementCount(shape.map { UInt64($0) }),
      let elements = Int(exactly: count)
    else { preconditionFailure("tensor '\(name)' has shape \(shape), whose element count is not an Int") }
    return elements
  }
}

/// A tensor to be written: everything but its place in the file, which the header assigns.
public struct TensorSpec: Sendable, Hashable {
  public var name: String
  public var dtype: DType
  public var shape: [Int]

  /// Creates a tensor description.
  public init(name: String, dtype: DType, shape: [Int]) {
    self.name = name
    self.dtype = dtype
    self.shape = shape
  }

  /// The number of bytes the tensor's data takes.
  ///
  /// - Throws: ``SafeTensorsError/Code/invalidShape`` for a negative dimension,
  ///   ``SafeTensorsError/Code/sizeOverflow`` when the size overflows,
  ///   ``SafeTensorsError/Code/partialByte`` when it is not whole bytes.
  public func byteCount() throws(SafeTensorsError) -> Int {
    guard shape.allSatisfy({ $0 >= 0 }) else {
      throw SafeTensorsError(.invalidShape, "negative dimension in shape \(shape)", tensor: name)
    }
    let bytes = try dataByteCount(dtype, shape.map { UInt64($0) }, tensor: name)
    guard bytes <= UInt64(Int.max) else {
      throw SafeTensorsError(.sizeOverflow, "\(dtype.rawValue) \(shape) overflows 64-bit sizes", tensor: name)
    }
    return Int(bytes)
  }
}

/// The number of bytes `shape` elements of `dtype` take, computed without overflow, as the
/// reference computes it (element count first, then bits).
///
/// - Throws: `sizeOverflow` on overflow, `partialByte` when the bits are not whole bytes.
func dataByteCount(_ dtype: DType, _ shape: [UInt64], tensor name: String) throws(SafeTensorsError) -> UInt64 {
  guard let elements = elementCount(shape), !elements.multipliedReportingOverflow(by: UInt64(dtype.bitSize)).overflow
  else {
    throw SafeTensorsError(.sizeOverflow, "\(dtype.rawValue) \(shape) overflows 64-bit sizes", tensor: name)
  }
  guard let bytes = dtype.byteCount(elements: elements) else {
    throw SafeTensorsError(
      .partialByte, "\(elements) elements of \(dtype.rawValue) do not fill a whole number of bytes", tensor: name)
  }
  return bytes
}
