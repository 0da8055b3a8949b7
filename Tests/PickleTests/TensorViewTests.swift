import Foundation
import Pickle
import SafeTensors
import Testing

@Suite("Tensor views against their storages")
struct TensorViewTests {
  static let storage = PickleStorage(key: "0", elementType: .f32, elementCount: 6, byteRange: 128..<152)

  @Test("the needed extent is offset + 1 + Σ (size − 1)·stride, with zero strides reaching nothing")
  func extent() throws {
    // An expanded view: 10^6 × 10^6 elements, all the same storage element.
    let expanded = try PickleTensor(
      dtype: .f32, shape: [1_000_000, 1_000_000], strides: [0, 0], storageOffset: 5, storage: Self.storage)
    #expect(expanded.contiguousByteRange == nil)
    // Offset 3 + 1 + (3 − 1)·1 = 6 elements: fits exactly; one more does not.
    _ = try PickleTensor(dtype: .f32, shape: [3], strides: [1], storageOffset: 3, storage: Self.storage)
    #expect(throws: PickleError.self) {
      try PickleTensor(dtype: .f32, shape: [4], strides: [1], storageOffset: 3, storage: Self.storage)
    }
    // Bytes count, not elements: six f32 storage elements hold twelve bf16.
    _ = try PickleTensor(dtype: .bf16, shape: [12], strides: [1], storageOffset: 0, storage: Self.storage)
  }

  @Test("an element count that overflows through zero strides is refused")
  func overflowingCount() {
    do {
      _ = try PickleTensor(
        dtype: .f32, shape: [1 << 32, 1 << 32], strides: [0, 0], storageOffset: 0, storage: Self.storage)
      Issue.record("accepted 2^64 elements")
    } catch {
      #expect(error.code == .invalidView)
    }
  }

  @Test("negative sizes, strides and offsets, rank mismatches and overflowing extents are refused")
  func invalid() {
    let cases: [([Int], [Int], Int)] = [
      ([-1], [1], 0), ([2], [-1], 0), ([2], [1], -1), ([2, 3], [1], 0), ([2], [Int.max], 0), ([2], [1], Int.max),
    ]
    for (shape, strides, offset) in cases {
      #expect(throws: PickleError.self, "\(shape) \(strides) \(offset)") {
        try PickleTensor(dtype: .f32, shape: shape, strides: strides, storageOffset: offset, storage: Self.storage)
      }
    }
  }

  @Test("a view past its storage is refused naming the storage")
  func outOfBounds() {
    do {
      _ = try PickleTensor(dtype: .f32, shape: [2, 3], strides: [4, 1], storageOffset: 0, storage: Self.storage)
      Issue.record("accepted")
    } catch {
      #expect(error.code == .viewOutOfBounds && error.message.contains("'0'"))
    }
  }

  @Test("contiguous views give their byte range, others none; empty tensors an empty range")
  func ranges() throws {
    let row = try PickleTensor(dtype: .f32, shape: [1, 3], strides: [3, 1], storageOffset: 3, storage: Self.storage)
    #expect(row.contiguousByteRange == 140..<152)
    let column = try PickleTensor(
      dtype: .f32, shape: [2, 1], strides: [3, 1], storageOffset: 1, storage: Self.storage)
    #expect(column.contiguousByteRange == nil)
    let transposed = try PickleTensor(
      dtype: .f32, shape: [3, 2], strides: [1, 3], storageOffset: 0, storage: Self.storage)
    #expect(transposed.contiguousByteRange == nil)
    var offsets: [Int] = []
    transposed.forEachElementOffset { offsets.append($0) }
    #expect(offsets == [128, 140, 132, 144, 136, 148])
    let empty = try PickleTensor(dtype: .f32, shape: [0, 5], strides: [5, 1], storageOffset: 0, storage: Self.storage)
    #expect(empty.contiguousByteRange == 128..<128)
    let scalar = try PickleTensor(dtype: .f32, shape: [], strides: [], storageOffset: 2, storage: Self.storage)
    #expect(scalar.contiguousByteRange == 136..<140)
  }

  @Test("a zero-stride view in a file is read, gathered element by element")
  func expandedInFile() throws {
    let path = TorchZipWriter(
      pickle: oneTensorPickle(shape: [2, 3], strides: [0, 1], offset: 3), storages: [("0", floatStorage(6))]
    ).write()
    let file = try PickleCheckpointFile(path: path)
    guard case .tensor(let tensor) = file.entries[0].value else {
      Issue.record("not a tensor")
      return
    }
    #expect(try file.bytes(of: tensor) == [3, 4, 5, 3, 4, 5].flatMap { le(Float($0).bitPattern) })
  }

  @Test("two entries on one storage share it (tied weights)")
  func shared() throws {
    let pickle = PickleWriter.stateDict([
      ("a", { $0.tensor(key: "0", count: 6, shape: [6], strides: [1]) }),
      ("b", { $0.tensor(key: "0", count: 6, offset: 2, shape: [2, 2], strides: [2, 1]) }),
    ])
    let file = try PickleCheckpointFile(
      path: TorchZipWriter(pickle: pickle, storages: [("0", floatStorage(6))]).write())
    #expect(file.storages.count == 1)
    #expect(file.entries.map { $0.tensors.first!.storage } == [file.storages[0], file.storages[0]])
  }

  @Test("conjugated views, quantized storages and complex types are refused")
  func unsupported() throws {
    let conj = PickleWriter.stateDict([
      (
        "w",
        { writer in
          writer.global("torch._utils", "_rebuild_tensor_v2")
          writer.mark()
          writer.storage("FloatStorage", key: "0", count: 6)
          writer.int(0)
          writer.intTuple([6])
          writer.intTuple([1])
          writer.bool(false)
          writer.orderedDict()
          writer.emptyDict()
          writer.string("conj")
          writer.bool(true)
          writer.setItem()
          writer.tuple()
          writer.reduce()
        }
      )
    ])
    #expect(try #require(refusal(conj)).code == .unsupportedTensor)
    let quantized = PickleWriter.stateDict([
      ("w", { $0.tensor("QInt8Storage", key: "0", count: 24, shape: [6], strides: [1]) })
    ])
    #expect(try #require(refusal(quantized)).message.contains("quantized"))
    let complex = PickleWriter.stateDict([
      ("w", { $0.tensor("ComplexFloatStorage", key: "0", count: 3, shape: [3], strides: [1]) })
    ])
    #expect(try #require(refusal(complex)).message.contains("complex"))
  }

  @Test("_rebuild_tensor_v3 takes its dtype from the dtype global over an untyped storage")
  func version3() throws {
    let pickle = PickleWriter.stateDict([
      ("q", { $0.tensorV3("float8_e4m3fn", key: "0", bytes: 24, offset: 4, shape: [2, 8], strides: [8, 1]) })
    ])
    let file = try PickleCheckpointFile(
      path: TorchZipWriter(pickle: pickle, storages: [("0", floatStorage(6))]).write())
    guard case .tensor(let tensor) = file.entries[0].value else {
      Issue.record("not a tensor")
      return
    }
    #expect(tensor.dtype == .f8e4m3 && tensor.storage.elementType == .u8)
    #expect(
      tensor.contiguousByteRange == tensor.storage.byteRange.lowerBound + 4..<tensor.storage.byteRange.lowerBound + 20)
  }
}

@Suite("State-dict names")
struct StateDictNameTests {
  @Test("two spellings of one name (NFC and NFD) are two entries, as in Python")
  func exactNames() throws {
    let composed = "caf\u{E9}"
    let decomposed = "cafe\u{301}"
    let pickle = PickleWriter.stateDict([
      (composed, { $0.tensor(key: "0", count: 6, shape: [3], strides: [1]) }),
      (decomposed, { $0.tensor(key: "0", count: 6, offset: 3, shape: [3], strides: [1]) }),
    ])
    let file = try PickleCheckpointFile(
      path: TorchZipWriter(pickle: pickle, storages: [("0", floatStorage(6))]).write())
    #expect(file.entries.count == 2)
    #expect(file.entry(named: decomposed)?.tensors.first?.storageOffset == 3)
    #expect(file.entry(named: composed)?.tensors.first?.storageOffset == 0)
  }

  @Test("a key set twice keeps its first place and its last value, as in Python")
  func repeatedKey() throws {
    let pickle = PickleWriter.stateDict([
      ("a", { $0.tensor(key: "0", count: 6, shape: [3], strides: [1]) }),
      ("b", { $0.tensor(key: "0", count: 6, shape: [1], strides: [1]) }),
      ("a", { $0.tensor(key: "0", count: 6, offset: 3, shape: [3], strides: [1]) }),
    ])
    let file = try PickleCheckpointFile(
      path: TorchZipWriter(pickle: pickle, storages: [("0", floatStorage(6))]).write())
    #expect(file.entries.map(\.name) == ["a", "b"])
    #expect(file.entry(named: "a")?.tensors.first?.storageOffset == 3)
  }
}

@Suite("Reading rows of a view")
struct RowReadTests {
  @Test("rows of contiguous and strided views read the same bytes as the whole, row by row")
  func rows() throws {
    let pickle = PickleWriter.stateDict([
      ("base", { $0.tensor(key: "0", count: 24, shape: [4, 6], strides: [6, 1]) }),
      ("t", { $0.tensor(key: "0", count: 24, shape: [6, 4], strides: [1, 6]) }),
      ("cols", { $0.tensor(key: "0", count: 24, offset: 2, shape: [4, 3], strides: [6, 1]) }),
      ("expanded", { $0.tensor(key: "0", count: 24, offset: 5, shape: [3, 2], strides: [0, 1]) }),
    ])
    let file = try PickleCheckpointFile(
      path: TorchZipWriter(pickle: pickle, storages: [("0", floatStorage(24))]).write())
    for entry in file.entries {
      let tensor = entry.tensors[0]
      let whole = try file.bytes(of: tensor)
      var pieces: [UInt8] = []
      for start in 0..<tensor.rowCount {
        var piece = [UInt8](repeating: 0, count: tensor.rowByteCount)
        // Exactly the scratch the tensor says one row takes (a read past it traps).
        let region = UnsafeMutableRawBufferPointer.allocate(byteCount: tensor.scratchBytes(rows: 1), alignment: 64)
        defer { region.deallocate() }
        var scratch = ReadScratch(region)
        try piece.withUnsafeMutableBytes { try file.read(tensor, rows: start..<start + 1, into: $0, scratch: &scratch) }
        pieces += piece
      }
      #expect(pieces == whole, "\(entry.name)")
    }
    // Rows of the transposed view reach most of the storage; of the contiguous one, just their bytes.
    guard case .tensor(let transposed)? = file.entry(named: "t")?.value,
      case .tensor(let base)? = file.entry(named: "base")?.value
    else { return }
    #expect(transposed.byteExtent(rows: 0..<1).count == (3 * 6 + 1) * 4)
    #expect(
      base.byteExtent(rows: 1..<3) == base.storage.byteRange.lowerBound + 24..<base.storage.byteRange.lowerBound + 72)
  }
}
