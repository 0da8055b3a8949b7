import Foundation
import SafeTensors
import Testing

@Suite struct WriterRoundTripTests {
  /// Writes `sample`, and when `SAFESHARD_INTEROP_OUT` is set also leaves the file and its
  /// manifest there for Tests/Interop/check_swift_output.py.
  static func write(_ sample: SampleFile, in directory: URL) throws -> URL {
    let url = directory.appendingPathComponent(sample.name + ".safetensors")
    try SafeTensorsWriter.write(path: url.path, header: sample.header(), data: sample.data())
    if let out = ProcessInfo.processInfo.environment["SAFESHARD_INTEROP_OUT"] {
      let target = URL(fileURLWithPath: out)
      try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
      let copy = target.appendingPathComponent(url.lastPathComponent)
      try? FileManager.default.removeItem(at: copy)
      try FileManager.default.copyItem(at: url, to: copy)
      try sample.manifest().json().write(
        to: target.appendingPathComponent(sample.name + ".json"), atomically: true, encoding: .utf8)
    }
    return url
  }

  @Test(arguments: SampleFile.all.map(\.name))
  func aWrittenFileReadsBackWithTheSameTensorsAndMetadata(name: String) throws {
    let sample = SampleFile.all.first { $0.name == name }!
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    let url = try Self.write(sample, in: directory)
    let file = try SafeTensorsFile(path: url.path)
    #expect(try Manifest(reading: file) == sample.manifest())
    #expect(file.header == (try sample.header()))
  }

  @Test func theSameInputAlwaysGivesTheSameBytes() throws {
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    let sample = SampleFile.all[3]
    var contents: [[UInt8]] = []
    for round in 0..<3 {
      let url = directory.appendingPathComponent("copy\(round).safetensors")
      try SafeTensorsWriter.write(path: url.path, header: sample.header(), data: sample.data())
      contents.append(try TestFiles.read(url))
    }
    #expect(contents[0] == contents[1] && contents[1] == contents[2])
  }

  @Test func theHeaderIsCompactMetadataFirstSortedAndPaddedWithSpaces() throws {
    let header = try SafeTensorsHeader(
      metadata: ["z": "1", "a": "é"],
      tensors: [TensorSpec(name: "b", dtype: .u8, shape: [1]), TensorSpec(name: "a", dtype: .f32, shape: [])])
    let bytes = header.encoded()
    let length = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) })
    #expect(length == bytes.count - 8)
    #expect(length % 8 == 0)
    let text = String(decoding: bytes[8...], as: UTF8.self)
    let json =
      #"{"__metadata__":{"a":"é","z":"1"},"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"#
      + #""a":{"dtype":"F32","shape":[],"data_offsets":[1,5]}}"#
    #expect(text.hasPrefix(json))
    #expect(text.dropFirst(json.count).allSatisfy { $0 == " " })
    #expect(text.count - json.count < 8)
  }

  @Test func theReferenceOrderIsDTypeDescendingThenName() throws {
    let header = try SafeTensorsHeader(
      metadata: nil,
      tensors: [
        TensorSpec(name: "b", dtype: .i8, shape: [1]), TensorSpec(name: "a", dtype: .bf16, shape: [1]),
        TensorSpec(name: "c", dtype: .f32, shape: [1]), TensorSpec(name: "a2", dtype: .i8, shape: [1]),
        TensorSpec(name: "Z", dtype: .i8, shape: [1]), TensorSpec(name: "d", dtype: .u64, shape: [1]),
      ],
      order: .reference)
    #expect(header.tensors.map(\.name) == ["d", "c", "a", "Z", "a2", "b"])
    #expect(header.tensors.map(\.dataOffsets.lowerBound) == [0, 8, 12, 14, 15, 16])
  }

  /// A header laid out for names the caller checked unique builds its table of names at the first
  /// lookup: every name, its NFC and NFD spellings as two names, is found where it was laid out.
  @Test func aHeaderOfUniquelyNamedTensorsFindsEachByItsExactName() throws {
    let specs = [
      TensorSpec(name: "caf\u{E9}.weight", dtype: .bf16, shape: [2, 3]),
      TensorSpec(name: "cafe\u{301}.weight", dtype: .i8, shape: [4]),
      TensorSpec(name: "b", dtype: .f32, shape: []),
    ]
    let header = try SafeTensorsHeader(metadata: ["format": "pt"], uniquelyNamed: specs)
    #expect(header == (try SafeTensorsHeader(metadata: ["format": "pt"], tensors: specs)))
    #expect(header.tensor(named: "caf\u{E9}.weight")?.dataOffsets == 0..<12)
    #expect(header.tensor(named: "cafe\u{301}.weight")?.dataOffsets == 12..<16)
    #expect(header.tensor(named: "b")?.dataOffsets == 16..<20)
    #expect(header.tensor(named: "c") == nil)
    #expect(throws: SafeTensorsError.self) {
      try SafeTensorsHeader(metadata: nil, uniquelyNamed: [TensorSpec(name: "__metadata__", dtype: .u8, shape: [1])])
    }
  }

  @Test func theDTypeOrderIsTheReferenceEnumOrder() {
    #expect(
      DType.allCases.map(\.rawValue) == [
        "BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ",
        "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64",
      ])
    #expect(DType.f4.byteCount(elements: 3) == nil)
    #expect(DType.f6e2m3.byteCount(elements: 4) == 3)
    #expect(DType.c64.byteCount(elements: 2) == 16)
  }

  @Test func theWriterRefusesTooMuchOrTooLittleData() throws {
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    let header = try SafeTensorsHeader(metadata: nil, tensors: [TensorSpec(name: "w", dtype: .f32, shape: [2])])
    let path = directory.appendingPathComponent("w.safetensors").path
    #expect(throws: SafeTensorsError.self) {
      try SafeTensorsWriter.write(path: path, header: header, data: ["w": [1, 2, 3]])
    }
    var writer = try SafeTensorsWriter(path: path, header: header)
    #expect(throws: SafeTensorsError.self) { try writer.write([UInt8](repeating: 0, count: 9)) }
    try writer.write([UInt8](repeating: 0, count: 4))
    do {
      try writer.finish()
      Issue.record("finish() accepted 4 of 8 data bytes")
    } catch {
      #expect(error.code == .invalidArgument)
    }
    // The short file is refused by the reader, so it cannot pass for complete output.
    let readError = #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(path: path) }
    #expect(readError?.code == .incompleteBuffer)
  }

  @Test func duplicateAndReservedNamesAreRefused() {
    let duplicate = #expect(throws: SafeTensorsError.self) {
      try SafeTensorsHeader(
        metadata: nil,
        tensors: [TensorSpec(name: "x", dtype: .u8, shape: [1]), TensorSpec(name: "x", dtype: .u8, shape: [1])])
    }
    #expect(duplicate?.code == .invalidArgument)
    let reserved = #expect(throws: SafeTensorsError.self) {
      try SafeTensorsHeader(metadata: nil, tensors: [TensorSpec(name: "__metadata__", dtype: .u8, shape: [1])])
    }
    #expect(reserved?.code == .invalidArgument)
  }
}
