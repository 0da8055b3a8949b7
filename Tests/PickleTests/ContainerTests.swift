import Foundation
import Pickle
import SafeTensors
import Testing

/// A float32 storage of `count` elements 0, 1, 2, ….
func floatStorage(_ count: Int) -> [UInt8] {
  (0..<count).flatMap { le(Float($0).bitPattern) }
}

/// A state dict of one `(2, 3)` float tensor `w` on storage `0` of 6 elements.
func oneTensorPickle(count: Int = 6, shape: [Int] = [2, 3], strides: [Int] = [3, 1], offset: Int = 0) -> [UInt8] {
  PickleWriter.stateDict([("w", { $0.tensor(key: "0", count: count, offset: offset, shape: shape, strides: strides) })])
}

func expectRefusal(
  _ code: PickleError.Code, _ path: String, containing text: String? = nil,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  do {
    let file = try PickleCheckpointFile(path: path)
    Issue.record("read \(file.entries.count) entries instead of refusing", sourceLocation: sourceLocation)
  } catch {
    #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
    #expect(error.file == path, sourceLocation: sourceLocation)
    if let text { #expect(error.description.contains(text), "\(error)", sourceLocation: sourceLocation) }
  }
}

@Suite("Containers: torch.save zip and legacy files")
struct ContainerTests {
  @Test("a zip archive's tensor points at its record's bytes")
  func zipTensor() throws {
    let path = TorchZipWriter(pickle: oneTensorPickle(), storages: [("0", floatStorage(6))]).write()
    let file = try PickleCheckpointFile(path: path)
    #expect(file.format == .zip)
    #expect(file.entries.map(\.name) == ["w"])
    guard case .tensor(let tensor) = file.entries[0].value else {
      Issue.record("not a tensor")
      return
    }
    #expect(tensor.dtype == .f32 && tensor.shape == [2, 3] && tensor.strides == [3, 1])
    #expect(tensor.storage.byteRange.lowerBound % 64 == 0)
    #expect(tensor.contiguousByteRange == tensor.storage.byteRange)
    #expect(try file.bytes(of: tensor) == floatStorage(6))
  }

  @Test("zip64 sizes and offsets in extra fields read the same")
  func zip64() throws {
    let writer = TorchZipWriter(pickle: oneTensorPickle(), storages: [("0", floatStorage(6))])
    let plain = try PickleCheckpointFile(path: writer.write())
    let wide = try PickleCheckpointFile(path: writer.write(zip64: true))
    #expect(plain.entries == wide.entries)
  }

  @Test("a legacy file's storages follow the pickles, each after its element count")
  func legacy() throws {
    let pickle = PickleWriter.stateDict([
      ("w", { $0.tensor(key: "140", count: 6, shape: [2, 3], strides: [3, 1]) }),
      ("b", { $0.tensor("HalfStorage", key: "99", count: 2, shape: [2], strides: [1]) }),
    ])
    let bytes = legacyCheckpoint(
      pickle: pickle, storages: [("140", 6, floatStorage(6)), ("99", 2, [0, 0x3C, 0, 0x40])])
    let path = writeTemporary(bytes)
    let file = try PickleCheckpointFile(path: path)
    #expect(file.format == .legacy)
    #expect(file.entries.map(\.name) == ["w", "b"])
    guard case .tensor(let b) = file.entries[1].value else {
      Issue.record("not a tensor")
      return
    }
    #expect(b.dtype == .f16)
    #expect(try file.bytes(of: b) == [0, 0x3C, 0, 0x40])
    #expect(b.storage.byteRange.upperBound == bytes.count)
  }

  @Test("a legacy storage whose count disagrees with the pickle is refused")
  func legacyCount() {
    let bytes = legacyCheckpoint(pickle: oneTensorPickle(), storages: [("0", 5, floatStorage(6))])
    expectRefusal(.storageSize, writeTemporary(bytes))
  }

  @Test("a big-endian legacy file is refused")
  func legacyBigEndian() {
    let bytes = legacyCheckpoint(pickle: oneTensorPickle(), storages: [("0", 6, floatStorage(6))], littleEndian: false)
    expectRefusal(.bigEndian, writeTemporary(bytes))
  }

  @Test("a tar archive is refused as such")
  func tar() {
    var bytes = [UInt8](repeating: 0, count: 1024)
    bytes.replaceSubrange(0..<8, with: Array("sys_info".utf8))
    bytes.replaceSubrange(257..<262, with: Array("ustar".utf8))
    expectRefusal(.tarFormat, writeTemporary(bytes), containing: "tar")
  }

  @Test("something else is refused")
  func unknown() {
    expectRefusal(.unknownFormat, writeTemporary(Array("hello, world".utf8)))
  }

  @Test(
    "unsafe entry names are refused",
    arguments: ["archive/../evil", "/archive/data/0", "archive\\data\\1", "archive/./x", "archive//x", "c:/x"])
  func unsafeNames(name: String) {
    var writer = TorchZipWriter(pickle: oneTensorPickle(), storages: [("0", floatStorage(6))])
    writer.records.append(.init(name: name, data: [1, 2, 3]))
    expectRefusal(.zipEntryName, writer.write(), containing: name)
  }

  @Test("entries outside the single top folder are refused")
  func twoFolders() {
    var writer = TorchZipWriter(pickle: oneTensorPickle(), storages: [("0", floatStorage(6))])
    writer.records.append(.init(name: "other/data/1", data: [1]))
    expectRefusal(.zipEntryName, writer.write(), containing: "top folder")
  }

  @Test("a repeated entry name is refused")
  func duplicate() {
    var writer = TorchZipWriter(pickle: oneTensorPickle(), storages: [("0", floatStorage(6))])
    writer.records.append(.init(name: "archive/data/0", data: floatStorage(6)))
    expectRefusal(.zipEntryName, writer.write(), containing: "twice")
  }

  @Test("compressed and encrypted entries are refused")
  func compressedOrEncrypted() {
    var compressed = TorchZipWriter(pickle: oneTensorPickle(), storages: [("0", floatStorage(6))])
    compressed.records[0].method = 8
    expectRefusal(.zipEntry, compressed.write(), containing: "compressed")
    var encrypted = TorchZipWriter(pickle: oneTensorPickle(), storages: [("0", floatStorage(6))])
    encrypted.records[3].flags |= 1
    expectRefusal(.zipEntry, encrypted.write(), containing: "encrypted")
  }

  @Test("TorchScript archives are refused")
  func torchScript() {
    var writer = TorchZipWriter(pickle: oneTensorPickle(), storages: [("0", floatStorage(6))])
    writer.records.append(.init(name: "archive/constants.pkl", data: [0x80, 2, 0x4E, 0x2E]))
    expectRefusal(.torchScript, writer.write())
    var code = TorchZipWriter(pickle: oneTensorPickle(), storages: [("0", floatStorage(6))])
    code.records.append(.init(name: "archive/code/__torch__.py", data: []))
    expectRefusal(.torchScript, code.write())
  }

  @Test("a big-endian archive is refused")
  func bigEndian() {
    let writer = TorchZipWriter(pickle: oneTensorPickle(), storages: [("0", floatStorage(6))], byteOrder: "big")
    expectRefusal(.bigEndian, writer.write())
  }

  @Test("a storage whose record is shorter or longer than the pickle says is refused")
  func storageSize() {
    expectRefusal(.storageSize, TorchZipWriter(pickle: oneTensorPickle(), storages: [("0", floatStorage(4))]).write())
    expectRefusal(.storageSize, TorchZipWriter(pickle: oneTensorPickle(), storages: [("0", floatStorage(7))]).write())
    expectRefusal(
      .storageSize, TorchZipWriter(pickle: oneTensorPickle(), storages: []).write(), containing: "no record")
  }

  @Test("a truncated archive is refused")
  func truncated() {
    let bytes = TorchZipWriter(pickle: oneTensorPickle(), storages: [("0", floatStorage(6))]).bytes()
    for length in [10, bytes.count / 2, bytes.count - 30] {
      expectRefusal(.zipFormat, writeTemporary(Array(bytes.prefix(length))))
    }
  }

  @Test("bytes after STOP in data.pkl are refused")
  func trailing() {
    expectRefusal(
      .malformedPickle, TorchZipWriter(pickle: oneTensorPickle() + [0x4E], storages: [("0", floatStorage(6))]).write(),
      containing: "after STOP")
  }
}
