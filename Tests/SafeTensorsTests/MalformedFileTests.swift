import Foundation
import SafeTensors
import Testing

/// One bad file: its bytes, and the rule a reader must say it breaks.
struct MalformedFile: CustomTestStringConvertible, Sendable {
  var name: String
  var bytes: [UInt8]
  var code: SafeTensorsError.Code
  var tensor: String?

  var testDescription: String { name }

  /// A file with `header` as its JSON (unpadded) and `data` after it.
  init(_ name: String, header: String, data: Int = 0, code: SafeTensorsError.Code, tensor: String? = nil) {
    self.init(name, json: Array(header.utf8), data: data, code: code, tensor: tensor)
  }

  init(_ name: String, json: [UInt8], data: Int = 0, code: SafeTensorsError.Code, tensor: String? = nil) {
    var bytes = withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init)
    bytes += json
    bytes += [UInt8](repeating: 0, count: data)
    self.init(name, bytes: bytes, code: code, tensor: tensor)
  }

  init(_ name: String, bytes: [UInt8], code: SafeTensorsError.Code, tensor: String? = nil) {
    self.name = name
    self.bytes = bytes
    self.code = code
    self.tensor = tensor
  }

  static func lengthPrefix(_ length: UInt64, then rest: [UInt8] = []) -> [UInt8] {
    withUnsafeBytes(of: length.littleEndian, Array.init) + rest
  }

  static let valid = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#

  static let all: [MalformedFile] = [
    MalformedFile("empty file", bytes: [], code: .headerTooSmall),
    MalformedFile("seven bytes", bytes: [8, 0, 0, 0, 0, 0, 0], code: .headerTooSmall),
    MalformedFile("huge header length", bytes: lengthPrefix(UInt64.max, then: Array("{}".utf8)), code: .headerTooLarge),
    MalformedFile(
      "header length just over the limit", bytes: lengthPrefix(100_000_001, then: Array("{}".utf8)),
      code: .headerTooLarge),
    MalformedFile("header length past the end", bytes: lengthPrefix(64, then: Array("{}".utf8)), code: .headerLength),
    MalformedFile(
      "file truncated inside the header",
      bytes: Array(MalformedFile("", header: valid, data: 8, code: .io).bytes.prefix(30)),
      code: .headerLength),
    MalformedFile(
      "invalid UTF-8", json: Array(#"{"__metadata__":{"k":""#.utf8) + [0xFF] + Array(#""}}"#.utf8),
      code: .headerEncoding),
    MalformedFile(
      "overlong UTF-8", json: Array(#"{"__metadata__":{"k":""#.utf8) + [0xC0, 0x80] + Array(#""}}"#.utf8),
      code: .headerEncoding),
    MalformedFile(
      "UTF-8 surrogate", json: Array(#"{"__metadata__":{"k":""#.utf8) + [0xED, 0xA0, 0x80] + Array(#""}}"#.utf8),
      code: .headerEncoding),
    MalformedFile("truncated JSON", header: #"{"a":"#, code: .headerSyntax),
    MalformedFile("text after the object", header: #"{} x"#, code: .headerSyntax),
    MalformedFile("NUL padding", json: Array("{}".utf8) + [0, 0, 0, 0, 0, 0], code: .headerSyntax),
    MalformedFile("invalid escape", header: #"{"__metadata__":{"k":"\x"}}"#, code: .headerSyntax),
    MalformedFile("unpaired surrogate escape", header: #"{"__metadata__":{"k":"\ud800"}}"#, code: .headerSyntax),
    MalformedFile(
      "raw control character in a string", header: "{\"__metadata__\":{\"k\":\"\u{1}\"}}", code: .headerSyntax),
    MalformedFile("trailing comma", header: #"{"__metadata__":{"k":"v",}}"#, code: .headerSyntax),
    MalformedFile("header is an array", header: "[]", code: .headerNotObject),
    MalformedFile("header is a string", header: #""x""#, code: .headerNotObject),
    MalformedFile(
      "deep nesting",
      header: #"{"a":{"dtype":"F32","shape":"# + String(repeating: "[", count: 200)
        + String(repeating: "]", count: 200) + "}}", code: .headerDepth),
    MalformedFile(
      "duplicate tensor names",
      header:
        #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
      data: 1, code: .duplicateKey),
    MalformedFile("duplicate metadata keys", header: #"{"__metadata__":{"k":"1","k":"2"}}"#, code: .duplicateKey),
    MalformedFile("metadata is not an object", header: #"{"__metadata__":["k"]}"#, code: .metadataNotStrings),
    MalformedFile("metadata value is a number", header: #"{"__metadata__":{"k":1}}"#, code: .metadataNotStrings),
    MalformedFile("entry is not an object", header: #"{"a":1}"#, code: .tensorEntry, tensor: "a"),
    MalformedFile(
      "entry lacks data_offsets", header: #"{"a":{"dtype":"U8","shape":[1]}}"#, code: .tensorEntry, tensor: "a"),
    MalformedFile(
      "unknown dtype", header: #"{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}"#, data: 16,
      code: .unknownDType, tensor: "a"),
    MalformedFile(
      "lower-case dtype", header: #"{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}"#, data: 4,
      code: .unknownDType, tensor: "a"),
    MalformedFile(
      "negative dimension", header: #"{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}"#,
      code: .invalidShape, tensor: "a"),
    MalformedFile(
      "fractional dimension", header: #"{"a":{"dtype":"U8","shape":[2.0],"data_offsets":[0,2]}}"#, data: 2,
      code: .invalidShape, tensor: "a"),
    MalformedFile(
      "shape is not an array", header: #"{"a":{"dtype":"U8","shape":2,"data_offsets":[0,2]}}"#, data: 2,
      code: .invalidShape, tensor: "a"),
    MalformedFile(
      "three data offsets", header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}"#, data: 1,
      code: .invalidOffsets, tensor: "a"),
    MalformedFile(
      "offsets end before they start", header: #"{"a":{"dtype":"U8","shape":[0],"data_offsets":[8,0]}}"#, data: 8,
      code: .invalidOffsets, tensor: "a"),
    MalformedFile(
      "negative offset", header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}}"#,
      code: .invalidOffsets, tensor: "a"),
    MalformedFile(
      "offset past 64 bits", header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,18446744073709551616]}}"#,
      code: .invalidOffsets, tensor: "a"),
    MalformedFile(
      "offset past Int.max", header: #"{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,18446744073709551615]}}"#,
      code: .sizeOverflow, tensor: "a"),
    MalformedFile(
      "element count overflows",
      header: #"{"a":{"dtype":"U8","shape":[4294967296,4294967296,2],"data_offsets":[0,0]}}"#,
      code: .sizeOverflow, tensor: "a"),
    MalformedFile(
      "byte count overflows", header: #"{"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}}"#,
      code: .sizeOverflow, tensor: "a"),
    MalformedFile(
      "odd number of 4-bit elements", header: #"{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#, data: 2,
      code: .partialByte, tensor: "a"),
    MalformedFile(
      "byte range does not match the shape", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#,
      data: 4, code: .sizeMismatch, tensor: "a"),
    MalformedFile(
      "first tensor does not start at 0", header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: 8,
      code: .offsetsNotContiguous, tensor: "a"),
    MalformedFile(
      "gap between tensors",
      header:
        #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}"#,
      data: 3, code: .offsetsNotContiguous, tensor: "b"),
    MalformedFile(
      "overlapping tensors",
      header:
        #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
      data: 12, code: .offsetsNotContiguous, tensor: "b"),
    MalformedFile("trailing bytes after the data", header: valid, data: 9, code: .incompleteBuffer),
    MalformedFile("data truncated", header: valid, data: 7, code: .incompleteBuffer),
    MalformedFile("no data at all", header: valid, code: .incompleteBuffer),
  ]
}

@Suite struct MalformedFileTests {
  @Test func theCorpusCoversEveryHeaderRule() {
    let covered = Set(MalformedFile.all.map(\.code))
    let headerRules: Set<SafeTensorsError.Code> = [
      .headerTooSmall, .headerTooLarge, .headerLength, .headerEncoding, .headerSyntax, .headerDepth, .headerNotObject,
      .duplicateKey, .metadataNotStrings, .tensorEntry, .unknownDType, .invalidShape, .invalidOffsets, .sizeOverflow,
      .partialByte, .sizeMismatch, .offsetsNotContiguous, .incompleteBuffer,
    ]
    #expect(headerRules.subtracting(covered).isEmpty)
    #expect(MalformedFile.all.count >= 25)
  }

  @Test(arguments: MalformedFile.all)
  func aMalformedFileIsRefusedWithItsRuleFileAndTensor(_ bad: MalformedFile) throws {
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    let url = directory.appendingPathComponent("bad.safetensors")
    try TestFiles.write(bad.bytes, to: url)
    let error = #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(path: url.path) }
    #expect(error?.code == bad.code)
    #expect(error?.file == url.path)
    if let tensor = bad.tensor { #expect(error?.tensor == tensor) }
    #expect(error.map { "\($0)".contains(url.path) && "\($0)".contains(bad.code.rawValue) } == true)
    #expect(Checkpoint.problems(at: url.path).map(\.code) == [bad.code])
    // Tests/Interop/check_swift_output.py checks that the reference reader refuses these too.
    if let out = ProcessInfo.processInfo.environment["SAFESHARD_INTEROP_OUT"] {
      let target = URL(fileURLWithPath: out).appendingPathComponent("malformed")
      try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
      let name = bad.name.replacingOccurrences(of: " ", with: "_") + "." + bad.code.rawValue + ".bin"
      try TestFiles.write(bad.bytes, to: target.appendingPathComponent(name))
    }
  }

  @Test(arguments: MalformedFile.all)
  func theInMemoryDecoderAgreesWithTheFileReader(_ bad: MalformedFile) {
    let error = #expect(throws: SafeTensorsError.self) {
      try bad.bytes.withUnsafeBytes { try SafeTensorsHeader.decode(file: $0) }
    }
    #expect(error?.code == bad.code)
  }

  @Test func aTextFileIsNotASafetensorsFileAndItsBytesAreNotEchoed() throws {
    // adversarial 1.3: a shard that is a symlink to /etc/passwd.
    let text = Array("root:x:0:0:root:/root:/bin/bash\n".utf8)
    let error = #expect(throws: SafeTensorsError.self) {
      try text.withUnsafeBytes { try SafeTensorsHeader.decode(file: $0) }
    }
    #expect(error?.code == .headerTooLarge)
    #expect(error?.message == "not a safetensors file: it starts with text where the 8-byte header length belongs")
  }

  @Test func namesThatDifferOnlyInNormalizationAreTwoTensors() throws {
    // adversarial 1.21: "café" with a precomposed é (NFC) and with e + U+0301 (NFD) are distinct
    // bytes; the reference and transformers accept the file. Swift's String == calls them equal.
    let (nfc, nfd) = ("caf\u{E9}.weight", "cafe\u{301}.weight")
    #expect(nfc == nfd && !nfc.utf8.elementsEqual(nfd.utf8))
    let file = MalformedFile(
      "",
      header:
        #"{"\#(nfc)":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"\#(nfd)":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}"#,
      data: 3, code: .io)
    let header = try file.bytes.withUnsafeBytes { try SafeTensorsHeader.decode(file: $0) }
    #expect(header.tensors.count == 2)
    #expect(header.tensor(named: nfc)?.shape == [1])
    #expect(header.tensor(named: nfd)?.shape == [2])
    #expect(ExactName(nfc) != ExactName(nfd) && ExactName(nfc) == ExactName("caf\u{E9}.weight"))
  }

  @Test func leadingWhitespaceIsAcceptedAsTheReferenceAcceptsIt() throws {
    let file = MalformedFile("", header: " \n" + MalformedFile.valid, data: 8, code: .io)
    let header = try file.bytes.withUnsafeBytes { try SafeTensorsHeader.decode(file: $0) }
    #expect(header.tensors.map(\.name) == ["a"])
  }

  @Test func extraFieldsInAnEntryAreIgnoredAsTheReferenceIgnoresThem() throws {
    let file = MalformedFile(
      "", header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}"#, data: 1, code: .io)
    let header = try file.bytes.withUnsafeBytes { try SafeTensorsHeader.decode(file: $0) }
    #expect(header.tensor(named: "a")?.dataOffsets == 0..<1)
  }
}
