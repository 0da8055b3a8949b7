/// A torchao weight quantization: how a high-precision tensor becomes torchao's data parts, chunk
/// by chunk, with exactly torchao 0.18's CPU bytes.
///
/// The input is raw little-endian bytes of a row-major tensor in ``source`` format, viewed as rows
/// of its last dimension. A caller plans with ``outputLayout(shape:)``; when
/// ``makeStatistic(shape:)`` returns a statistic, it feeds it every row first; then it quantizes
/// chunks of rows (in any order, concurrently if it likes: schemes are reentrant and single
/// threaded) with ``quantize(_:shape:rows:statistic:into:)``, and takes the per-tensor parts from
/// ``tensorParts(shape:statistic:)``.
public protocol QuantizationScheme: Sendable {
  /// The input format.
  var source: FloatFormat { get }

  /// The parts torchao stores for an input of `shape`, with their element types, shapes and
  /// sizes, and how chunks of rows map onto them.
  ///
  /// - Throws: `unsupportedShape` or `unsupportedFormat` for input torchao refuses to quantize
  ///   (or leaves unquantized), `invalidScheme` for parameters out of range.
  func outputLayout(shape: [Int]) throws(QuantizationError) -> QuantizedLayout

  /// An empty whole-tensor statistic to gather before quantizing, or `nil` when the scheme needs
  /// none.
  ///
  /// - Throws: what ``outputLayout(shape:)`` throws.
  func makeStatistic(shape: [Int]) throws(QuantizationError) -> AbsMaxStatistic?

  /// Quantizes input `rows` (bytes in `input`) and writes every part whose placement is not
  /// ``PartPlacement/tensor``.
  ///
  /// `outputs` holds one buffer per such part, sized as ``PartLayout/byteRange(rows:)`` says:
  /// just the chunk's bytes for row and tile parts (tile padding included), the whole part for
  /// gathered parts (the chunk writes only its own elements, so concurrent chunks may share it).
  ///
  /// - Throws: `invalidArgument` when the rows, input size, buffers or statistic do not match the
  ///   layout; what ``outputLayout(shape:)`` throws.
  func quantize(
    _ input: UnsafeRawBufferPointer, shape: [Int], rows: Range<Int>, statistic: AbsMaxStatistic?,
    into outputs: [PartName: UnsafeMutableRawBufferPointer]
  ) throws(QuantizationError)

  /// The bytes of the parts placed ``PartPlacement/tensor``, computed from the finished
  /// statistic; empty when the scheme has none.
  ///
  /// - Throws: `invalidArgument` when the statistic is missing or belongs to another tensor.
  func tensorParts(shape: [Int], statistic: AbsMaxStatistic?) throws(QuantizationError) -> [PartName: [UInt8]]

  /// Dequantizes input `rows` (of the `[rowCount, K]` view) from the part bytes that cover them:
  /// the high-precision values by the spec's dequantize formula (torchao's `dequantize()`), as
  /// ``source`` bytes, row-major, into `output` (`rows.count · K` elements).
  ///
  /// `parts` holds one buffer per part, sized as ``PartLayout/readRange(rows:)`` says: just the
  /// rows' bytes for row parts, the whole tiles that hold the rows for tile parts (so `rows` need
  /// not start on a tile), the whole part for gathered and tensor parts. Every scheme is row
  /// separable this way: dequantizing all chunks gives the bytes of dequantizing all rows at once.
  /// The `qdata` buffer may be the end of `output` (it takes at most a byte an element, the output
  /// at least two): every scheme writes the elements front to back, each only after reading the
  /// codes of the elements up to it.
  ///
  /// - Throws: `invalidArgument` when the rows are out of range or a buffer has the wrong size;
  ///   what ``outputLayout(shape:)`` throws.
  func dequantize(
    rows: Range<Int>, shape: [Int], parts: [PartName: UnsafeRawBufferPointer],
    into output: UnsafeMutableRawBufferPointer
  ) throws(QuantizationError)

  /// Whether every NaN and infinity of the input shows as a NaN or infinite scale (or, for MX,
  /// the scale byte an infinite block gets), as ``ScaleFindings`` reads them. `false` for schemes
  /// that clamp an infinite block's scale to a finite one; a caller that wants to warn about such
  /// values scans their input instead (``ScaleFindings/scan(input:format:rows:)``).
  var scalesShowNonFiniteInput: Bool { get }
}

extension QuantizationScheme {
  /// `true`: the scale of every scheme but NVFP4 without a per-tensor scale and MX with FLOOR
  /// follows its block's largest magnitude, which NaN and infinity reach.
  public var scalesShowNonFiniteInput: Bool { true }

  /// Quantizes a whole tensor at once: gathers the statistic, quantizes all rows as one chunk and
  /// adds the per-tensor parts. Meant for small tensors and tests; large ones go chunk by chunk.
  ///
  /// - Throws: what ``outputLayout(shape:)`` and ``quantize(_:shape:rows:statistic:into:)`` throw.
  public func quantize(_ input: UnsafeRawBufferPointer, shape: [Int]) throws(QuantizationError) -> [PartName: [UInt8]] {
    let layout = try outputLayout(shape: shape)
    var statistic = try makeStatistic(shape: shape)
    try statistic?.accumulate(input, firstRow: 0)
    var result = try tensorParts(shape: shape, statistic: statistic)
    var storage: [PartName: UnsafeMutableRawBufferPointer] = [:]
    defer { storage.values.forEach { $0.deallocate() } }
    for part in layout.parts where part.placement != .tensor {
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: part.byteCount, alignment: 64)
      buffer.initializeMemory(as: UInt8.self, repeating: 0)
      storage[part.name] = buffer
    }
    try quantize(input, shape: shape, rows: 0..<layout.rowCount, statistic: statistic, into: storage)
    for (name, buffer) in storage { result[name] = Array(buffer.bindMemory(to: UInt8.self)) }
    return result
  }

  /// The high-precision values the parts stand for, by the spec's dequantize formula, rounded to
  /// ``source`` (returned widened to `Float`, row-major): all rows as one chunk of
  /// ``dequantize(rows:shape:parts:into:)``. Meant for small tensors, inspection and tests.
  ///
  /// - Throws: `invalidArgument` when a part is missing or has the wrong size; what
  ///   ``outputLayout(shape:)`` throws.
  public func dequantize(_ parts: [PartName: [UInt8]], shape: [Int]) throws(QuantizationError) -> [Float] {
    let layout = try outputLayout(shape: shape)
    try PartBytes.check(parts, against: layout)
    let count = layout.rowCount * layout.rowLength
    let output = UnsafeMutableRawBufferPointer.allocate(byteCount: count * source.byteWidth, alignment: 64)
    var storage: [UnsafeMutableRawBufferPointer] = [output]
    defer { storage.forEach { $0.deallocate() } }
    var buffers: [PartName: UnsafeRawBufferPointer] = [:]
    for part in layout.parts {
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: part.byteCount, alignment: 64)
      storage.append(buffer)
      buffer.copyBytes(from: parts[part.name]!)
      buffers[part.name] = UnsafeRawBufferPointer(buffer)
    }
    try dequantize(rows: 0..<layout.rowCount, shape: shape, parts: buffers, into: output)
    return (0..<count).map { source.value(at: $0, in: output.baseAddress!) }
  }
}
