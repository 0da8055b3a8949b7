import Quantization
import SafeTensors

/// A legacy torchao `AffineQuantizedTensor` (torchao ≤ 0.17) with a plain layout, read from a
/// pickle so that it can be dequantized: torchao 0.18 can no longer load these, and its
/// safetensors format has no type for them.
///
/// Two layouts are read (every other one is refused by the reader):
/// - `PlainAQTTensorImpl`: integer `data`, `scale`, optional integer `zeroPoint`;
///   `value = R_dt( R_dt(q − zp) × scale )`, computed in `Float` (torchao 0.12's
///   `dequantize_affine` with the integer zero-point domain);
/// - `Float8AQTTensorImpl`: float8 `data` and `scale`; `value = R_dt( f32(q) × scale )`.
///
/// `scale` and `zeroPoint` hold one value per block of ``blockSize`` elements, in row-major
/// order of the block grid. A `LinearActivationQuantizedTensor` around the weight (int8
/// dynamic-activation configs) is read as the weight, with ``inputQuantization`` naming its
/// activation-quantization function.
public struct AffineQuantizedTensor: Sendable, Equatable {
  /// The layout of the quantized data.
  public enum Layout: String, Sendable, Equatable {
    /// `PlainAQTTensorImpl`: integers with an integer zero point.
    case plain = "PlainLayout"
    /// `Float8AQTTensorImpl`: float8 values.
    case float8 = "Float8Layout"
  }

  /// The layout.
  public internal(set) var layout: Layout
  /// The quantized values (`int_data` or `float8_data`), in the weight's shape.
  public internal(set) var data: PickleTensor
  /// The scales, one per block.
  public internal(set) var scale: PickleTensor
  /// The integer zero points, one per block; `nil` when there are none (zero).
  public internal(set) var zeroPoint: PickleTensor?
  /// The block each scale covers, one size per dimension.
  public internal(set) var blockSize: [Int]
  /// The weight's shape.
  public internal(set) var shape: [Int]
  /// The weight's (and the dequantized values') element type: `BF16`, `F16` or `F32`.
  public internal(set) var dtype: FloatFormat
  /// `quant_min` and `quant_max`, when the pickle gives them.
  public internal(set) var quantizationRange: ClosedRange<Int>?
  /// The name of the activation-quantization function of a `LinearActivationQuantizedTensor`
  /// around the weight (`torchao.quantization.quant_api._int8_symm_per_token_reduced_range_quant`),
  /// or `nil` for a weight-only tensor.
  public internal(set) var inputQuantization: String?

  init(
    layout: Layout, data: PickleTensor, scale: PickleTensor, zeroPoint: PickleTensor?, blockSize: [Int],
    shape: [Int], dtype: FloatFormat, quantizationRange: ClosedRange<Int>?, inputQuantization: String?
  ) {
    self.layout = layout
    self.data = data
    self.scale = scale
    self.zeroPoint = zeroPoint
    self.blockSize = blockSize
    self.shape = shape
    self.dtype = dtype
    self.quantizationRange = quantizationRange
    self.inputQuantization = inputQuantization
  }

  /// The length of a row: the last dimension (1 for a 0-d weight).
  public var rowLength: Int { shape.last ?? 1 }

  /// The number of rows: the product of every dimension but the last.
  public var rowCount: Int { shape.dropLast().reduce(1, *) }

  /// The byte size of one dequantized row.
  public var outputRowByteCount: Int { rowLength * dtype.byteWidth }

  /// The byte size of one quantized row of ``data``.
  public var dataRowByteCount: Int { rowLength * data.elementSize }

  /// Dequantizes rows `rows` (row-major over all dimensions but the last).
  ///
  /// - Parameters:
  ///   - rows: The rows, within `0..<rowCount`.
  ///   - data: Those rows of ``data``, C-contiguous (`rows.count × dataRowByteCount` bytes).
  ///   - scale: All of ``scale``, C-contiguous.
  ///   - zeroPoint: All of ``zeroPoint``, C-contiguous, when there is one.
  ///   - output: `rows.count × outputRowByteCount` bytes, written in ``dtype``. `data` may be
  ///     the end of `output` when its elements are no wider than the output's (dequantizing in
  ///     place): elements are dequantized front to back, each read before it is written.
  /// - Throws: `affineQuantized` when a buffer has the wrong size.
  public func dequantize(
    rows: Range<Int>, data: UnsafeRawBufferPointer, scale: UnsafeRawBufferPointer,
    zeroPoint: UnsafeRawBufferPointer?, into output: UnsafeMutableRawBufferPointer
  ) throws(PickleError) {
    let blocks = blockCount
    guard rows.lowerBound >= 0, rows.upperBound <= rowCount, data.count == rows.count * dataRowByteCount,
      output.count == rows.count * outputRowByteCount, scale.count == blocks * self.scale.elementSize,
      (zeroPoint?.count ?? 0) == (self.zeroPoint.map { blocks * $0.elementSize } ?? 0)
    else {
      throw PickleError(.affineQuantized, "dequantize: buffers do not match rows \(rows) of a \(shape) weight")
    }
    let scaleFormat = FloatFormat(rawValue: self.scale.dtype.rawValue)!
    let length = rowLength
    let lastBlock = blockSize.last ?? 1
    let grid = zip(shape, blockSize).map { $0 / $1 }
    let lastGrid = grid.last ?? 1
    guard let base = data.baseAddress, let scales = scale.baseAddress else { return }
    for (localRow, row) in rows.enumerated() {
      // The block-grid index of the row's leading dimensions, row-major.
      var remainder = row
      var leading = 0
      var gridStride = lastGrid
      for dimension in stride(from: shape.count - 2, through: 0, by: -1) {
        let index = remainder % shape[dimension]
        remainder /= shape[dimension]
        leading += index / blockSize[dimension] * gridStride
        gridStride *= grid[dimension]
      }
      // One scale (and zero point) per run of `lastBlock` columns.
      var column = 0
      while column < length {
        let block = leading + column / lastBlock
        let end = min(length, (column / lastBlock + 1) * lastBlock)
        let factor = scaleFormat.value(at: block, in: scales)
        var zero: Int64 = 0
        if let zeroPointTensor = self.zeroPoint, let zeroData = zeroPoint?.baseAddress {
          zero = Self.integer(at: block, in: zeroData, dtype: zeroPointTensor.dtype)
        }
        for element in localRow * length + column..<localRow * length + end {
          let value: Float
          switch layout {
          case .plain:
            let difference = Self.integer(at: element, in: base, dtype: self.data.dtype) - zero
            value = dtype.round(dtype.round(Float(difference)) * factor)
          case .float8:
            value = dtype.round(Self.float8(at: element, in: base, dtype: self.data.dtype) * factor)
          }
          dtype.store(value, at: element, in: output)
        }
        column = end
      }
    }
  }

  /// The number of blocks: the product of `shape[i] / blockSize[i]`.
  var blockCount: Int { zip(shape, blockSize).map { $0 / $1 }.reduce(1, *) }

  /// Element `index` of integer data of type `dtype`.
  static func integer(at index: Int, in bytes: UnsafeRawPointer, dtype: DType) -> Int64 {
    switch dtype {
    case .i8: Int64(bytes.load(fromByteOffset: index, as: Int8.self))
    case .u8: Int64(bytes.load(fromByteOffset: index, as: UInt8.self))
    case .i16: Int64(Int16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * index, as: Int16.self)))
    case .i32: Int64(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * index, as: Int32.self)))
    default: Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * index, as: Int64.self))
    }
  }

  /// Element `index` of float8 data (`F8_E4M3` or `F8_E5M2`), exactly.
  static func float8(at index: Int, in bytes: UnsafeRawPointer, dtype: DType) -> Float {
    let byte = bytes.load(fromByteOffset: index, as: UInt8.self)
    return dtype == .f8e5m2
      ? Float16Conversion.float(from: UInt16(byte) << 8) : Float8E4M3Conversion.float(from: byte)
  }
}
