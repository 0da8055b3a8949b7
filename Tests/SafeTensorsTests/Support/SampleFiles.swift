import SafeTensors

/// A file's worth of tensors to write: specs with their bytes, and metadata.
struct SampleFile {
  var name: String
  var metadata: [String: String]?
  var tensors: [(spec: TensorSpec, data: [UInt8])]
  var order: SafeTensorsHeader.Order = .given

  func header() throws -> SafeTensorsHeader {
    try SafeTensorsHeader(metadata: metadata, tensors: tensors.map(\.spec), order: order)
  }

  func data() -> [String: [UInt8]] {
    Dictionary(uniqueKeysWithValues: tensors.map { ($0.spec.name, $0.data) })
  }

  /// The manifest of the file once written: tensors in the header's (data) order.
  func manifest() throws -> Manifest {
    let data = data()
    return Manifest(
      metadata: metadata,
      tensors: try header().tensors.map {
        Manifest.Tensor(name: $0.name, dtype: $0.dtype.rawValue, shape: $0.shape, data: data[$0.name]!)
      })
  }

  static func tensor(_ name: String, _ dtype: DType, _ shape: [Int], seed: UInt64) -> (TensorSpec, [UInt8]) {
    let spec = TensorSpec(name: name, dtype: dtype, shape: shape)
    var generator = SeededBytes(seed: seed)
    return (spec, generator.bytes(try! spec.byteCount()))
  }

  /// The cases every writer test and the Python interop check use.
  static let all: [SampleFile] = [
    SampleFile(
      name: "every_dtype", metadata: ["format": "pt", "writer": "safeshard"],
      tensors: DType.allCases.enumerated().map { index, dtype in
        tensor("t_\(dtype.rawValue.lowercased())", dtype, [3, 4], seed: UInt64(index))
      }),
    SampleFile(
      name: "every_dtype_reference_order", metadata: nil,
      tensors: DType.allCases.enumerated().map { index, dtype in
        tensor("r\(index % 3)_\(dtype.rawValue)", dtype, [2, 4], seed: UInt64(100 + index))
      },
      order: .reference),
    SampleFile(
      name: "scalars_and_empty", metadata: [:],
      tensors: [
        tensor("scalar_f32", .f32, [], seed: 1), tensor("scalar_bf16", .bf16, [], seed: 2),
        tensor("empty_f16", .f16, [0], seed: 3), tensor("empty_2d_i64", .i64, [4, 0], seed: 4),
        tensor("scalar_u8", .u8, [], seed: 5),
      ]),
    SampleFile(
      name: "unicode_metadata",
      metadata: ["note": "größe ✓ 日本語 \"quoted\" \\ \n\t\u{1}", "emoji": "🤖", "ключ": "значение"],
      tensors: [tensor("embed.größe", .bf16, [8, 16], seed: 7), tensor("日本", .f16, [3], seed: 8)]),
    SampleFile(name: "empty_file", metadata: nil, tensors: []),
  ]
}
