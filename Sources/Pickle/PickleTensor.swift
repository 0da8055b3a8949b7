import SafeTensors

/// A plain tensor of a pickle checkpoint: a strided view into a ``PickleStorage``.
///
/// Construction through the reader checks the view: sizes, strides and offset are non-negative
/// `Int`s, and every element it reaches lies inside the storage, with overflow-checked
/// arithmetic. Its bytes are never loaded by the reader; ``contiguousByteRange`` says where they
/// are when they can be streamed as they are.
public struct PickleTensor: Sendable, Hashable {
  /// The element type.
  public private(set) var dtype: DType
  /// The sizes, outermost first (`[]` for a 0-d tensor).
  public private(set) var shape: [Int]
  /// The strides, in elements.
  public private(set) var strides: [Int]
  /// The offset of element 0 in the storage, in elements.
  public private(set) var storageOffset: Int
  /// The storage the tensor views.
  public private(set) var storage: PickleStorage

  /// The number of elements (1 for a 0-d tensor).
  public var elementCount: Int { shape.reduce(1, *) }

  /// The size of the tensor's data as a C-contiguous array, in bytes.
  public var byteCount: Int { elementCount * dtype.bitSize / 8 }

  /// The byte size of one element.
  public var elementSize: Int { dtype.bitSize / 8 }

  /// Whether the view is C-contiguous (row-major with no gaps; sizes of 1 and empty tensors do
  /// not break it).
  public var isContiguous: Bool {
    if shape.contains(0) { return true }
    var expected = 1
    for (size, stride) in zip(shape, strides).reversed() where size != 1 {
      if stride != expected { return false }
      expected *= size
    }
    return true
  }

  /// The absolute byte range in the file of the tensor's data when the view is C-contiguous,
  /// which is what safetensors would store; `nil` for any other view (transposed, sliced
  /// columns, …), whose elements must be gathered. An empty tensor has an empty range at its
  /// storage's start.
  public var contiguousByteRange: Range<Int>? {
    guard isContiguous else { return nil }
    if elementCount == 0 { return storage.byteRange.lowerBound..<storage.byteRange.lowerBound }
    let start = storage.byteRange.lowerBound + storageOffset * elementSize
    return start..<start + byteCount
  }

  /// The number of rows: the size of the first dimension (1 for a 0-d tensor).
  public var rowCount: Int { shape.first ?? 1 }

  /// The byte size of one row as a C-contiguous array.
  public var rowByteCount: Int { shape.dropFirst().reduce(1, *) * elementSize }

  /// The absolute file range that rows `rows` (indices along the first dimension) reach: what
  /// must be read to gather them. For a contiguous view it is exactly their bytes; for a
  /// transposed view it can be most of the storage, which a caller reading under a memory
  /// budget must account for. Empty when the rows hold no elements.
  public func byteExtent(rows: Range<Int>) -> Range<Int> {
    precondition(rows.lowerBound >= 0 && rows.upperBound <= rowCount, "rows \(rows) outside 0..<\(rowCount)")
    let start = storage.byteRange.lowerBound
    guard !rows.isEmpty, elementCount > 0 else { return start..<start }
    let first = storageOffset + rows.lowerBound * (strides.first ?? 0)
    var last = storageOffset + (rows.upperBound - 1) * (strides.first ?? 0)
    for (size, stride) in zip(shape, strides).dropFirst() { last += (size - 1) * stride }
    return start + first * elementSize..<start + (last + 1) * elementSize
  }

  /// The scratch ``PickleCheckpointFile/read(_:rows:into:scratch:)`` takes to read at most
  /// `count` rows: none for a contiguous view, else the extent of that many rows (the same
  /// length wherever they start, the strides being fixed).
  public func scratchBytes(rows count: Int) -> Int {
    isContiguous ? 0 : ReadScratch.bytes(byteExtent(rows: 0..<min(max(count, 0), rowCount)).count)
  }

  /// The absolute file offset of each element, in row-major order, through `body`: for
  /// gathering a view that is not contiguous. The offsets are inside ``storage``.
  public func forEachElementOffset(_ body: (Int) throws -> Void) rethrows {
    if elementCount == 0 { return }
    var index = [Int](repeating: 0, count: shape.count)
    let base = storage.byteRange.lowerBound
    var element = storageOffset
    while true {
      try body(base + element * elementSize)
      var dimension = shape.count - 1
      while dimension >= 0 {
        index[dimension] += 1
        if index[dimension] < shape[dimension] {
          element += strides[dimension]
          break
        }
        // Back to the start of this dimension: a step the view's checked extent covers.
        element -= strides[dimension] * (shape[dimension] - 1)
        index[dimension] = 0
        dimension -= 1
      }
      if dimension < 0 { return }
    }
  }

  /// Narrows the view to rows `rows` of the first dimension (a view of a view, still inside the
  /// storage).
  mutating func restrict(toRows rows: Range<Int>) {
    guard !shape.isEmpty else { return }
    storageOffset += rows.lowerBound * strides[0]
    shape[0] = rows.count
  }

  /// Creates a tensor after checking the view against its storage.
  ///
  /// - Throws: `invalidView` for a negative size, stride or offset, a rank mismatch or an
  ///   overflow; `viewOutOfBounds` when the view reaches past the storage.
  public init(dtype: DType, shape: [Int], strides: [Int], storageOffset: Int, storage: PickleStorage)
    throws(PickleError)
  {
    guard shape.count == strides.count else {
      throw PickleError(.invalidView, "\(shape.count) sizes but \(strides.count) strides")
    }
    guard shape.allSatisfy({ $0 >= 0 }) else { throw PickleError(.invalidView, "negative size in \(shape)") }
    guard strides.allSatisfy({ $0 >= 0 }) else { throw PickleError(.invalidView, "negative stride in \(strides)") }
    guard storageOffset >= 0 else { throw PickleError(.invalidView, "negative storage offset \(storageOffset)") }
    guard dtype.bitSize % 8 == 0 else { throw PickleError(.unsupportedTensor, "\(dtype.rawValue) is not byte-sized") }
    let size = dtype.bitSize / 8
    var count = 1
    for dimension in shape {
      let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
      guard !overflow else { throw PickleError(.invalidView, "the element count of \(shape) overflows") }
      count = product
    }
    guard !count.multipliedReportingOverflow(by: size).overflow else {
      throw PickleError(.invalidView, "the byte size of \(shape) overflows")
    }
    if count > 0 {
      // The elements reach from `offset` to `offset + Σ (size_i − 1)·stride_i`: zero strides
      // (expanded views) reach no further than their first element.
      var last = storageOffset
      for (dimension, stride) in zip(shape, strides) {
        let (step, overflow) = (dimension - 1).multipliedReportingOverflow(by: stride)
        let (sum, overflowSum) = last.addingReportingOverflow(step)
        guard !overflow, !overflowSum else {
          throw PickleError(.invalidView, "the extent of sizes \(shape), strides \(strides) overflows")
        }
        last = sum
      }
      let (extent, overflow) = (last.addingReportingOverflow(1))
      let (bytes, overflowBytes) = extent.multipliedReportingOverflow(by: size)
      guard !overflow, !overflowBytes, bytes <= storage.byteRange.count else {
        throw PickleError(
          .viewOutOfBounds,
          "the view (offset \(storageOffset), sizes \(shape), strides \(strides)) reaches element \(last) of "
            + "\(dtype.rawValue), past its storage '\(storage.key)' of \(storage.byteRange.count) bytes")
      }
    }
    self.dtype = dtype
    self.shape = shape
    self.strides = strides
    self.storageOffset = storageOffset
    self.storage = storage
  }
}
