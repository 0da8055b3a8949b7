import Foundation
import Pickle
import SafeTensors
import Testing
import TorchAO

/// Every entry of `file` equals the tensor of the same name in `golden`: dtype, shape and bytes
/// (strided views gathered).
func expectEqual(
  _ file: PickleCheckpointFile, _ golden: SafeTensorsFile, sourceLocation: SourceLocation = #_sourceLocation
)
  throws
{
  for entry in file.entries {
    guard case .tensor(let tensor) = entry.value else {
      Issue.record("\(entry.name) is not a plain tensor", sourceLocation: sourceLocation)
      continue
    }
    let expected = try golden.tensor(named: entry.name)
    #expect(tensor.dtype == expected.dtype, "\(entry.name)", sourceLocation: sourceLocation)
    #expect(tensor.shape == expected.shape, "\(entry.name)", sourceLocation: sourceLocation)
    #expect(try file.bytes(of: tensor) == golden.bytes(of: expected), "\(entry.name)", sourceLocation: sourceLocation)
  }
}

@Suite("Plain pickle fixtures equal their safetensors goldens")
struct GoldenFixtureTests {
  @Test(
    "every entry equals the golden, in the golden's set of names",
    arguments: [
      ("plain", PickleCheckpointFile.Format.zip), ("module_sd", .zip), ("legacy", .legacy), ("proto4", .zip),
      ("many", .zip), ("py2_strings", .zip),
    ])
  func plain(name: String, format: PickleCheckpointFile.Format) throws {
    let file = try PickleCheckpointFile(path: PickleFixtures.path("\(name).pt"))
    let golden = try SafeTensorsFile(path: PickleFixtures.path("\(name).safetensors"))
    #expect(file.format == format)
    #expect(Set(file.entries.map(\.name)) == Set(golden.header.tensors.map(\.name)))
    try expectEqual(file, golden)
  }

  @Test("plain.pt has views, 0-d, empty and shared entries with the right geometry")
  func views() throws {
    let file = try PickleCheckpointFile(path: PickleFixtures.path("plain.pt"))
    var shared: [PickleStorage: [String]] = [:]
    for entry in file.entries {
      guard case .tensor(let tensor) = entry.value else { continue }
      shared[tensor.storage, default: []].append(entry.name)
      // A view is contiguous exactly when its range is given, and then it is inside its storage.
      if let range = tensor.contiguousByteRange {
        #expect(tensor.isContiguous)
        #expect(tensor.storage.byteRange.contains(range.lowerBound) || range.isEmpty)
        #expect(range.upperBound <= tensor.storage.byteRange.upperBound)
      } else {
        #expect(!tensor.isContiguous)
      }
    }
    let tensors = file.entries.compactMap { entry -> PickleTensor? in
      if case .tensor(let tensor) = entry.value { return tensor } else { return nil }
    }
    #expect(tensors.contains { $0.shape.isEmpty })  // 0-d
    #expect(tensors.contains { $0.elementCount == 0 })  // empty
    #expect(tensors.contains { $0.contiguousByteRange == nil })  // transposed or sliced columns
    #expect(tensors.contains { $0.storageOffset > 0 })
    #expect(shared.values.contains { $0.count >= 3 })  // one fp32 storage under several views
  }

  @Test(
    "a single-file HF pickle, zip or legacy, equals save_pretrained's safetensors; the tied lm_head shares its storage",
    arguments: [("hf-single", PickleCheckpointFile.Format.zip), ("hf-legacy", .legacy)])
  func hfSingle(directory: String, format: PickleCheckpointFile.Format) throws {
    let file = try PickleCheckpointFile(path: PickleFixtures.path("\(directory)/pytorch_model.bin"))
    #expect(file.format == format)
    let golden = try SafeTensorsFile(path: PickleFixtures.path("hf-single-safetensors/model.safetensors"))
    for expected in golden.header.tensors {
      guard case .tensor(let tensor)? = file.entry(named: expected.name)?.value else {
        Issue.record("\(expected.name) missing")
        continue
      }
      #expect(tensor.dtype == expected.dtype && tensor.shape == expected.shape)
      #expect(try file.bytes(of: tensor) == golden.bytes(of: expected))
    }
    guard case .tensor(let head)? = file.entry(named: "lm_head.weight")?.value,
      case .tensor(let embedding)? = file.entry(named: "model.embed_tokens.weight")?.value
    else {
      Issue.record("no tied pair")
      return
    }
    #expect(head.storage == embedding.storage)
    #expect(head.contiguousByteRange == embedding.contiguousByteRange)
  }

  @Test("sharded HF pickles: the index names each tensor's shard, and the shards equal the golden")
  func hfSharded() throws {
    let directory = PickleFixtures.path("hf-sharded")
    let indexPath = "\(directory)/\(PickleCheckpointFile.indexFileName)"
    let index = try ShardIndex.decode(Array(try Data(contentsOf: URL(fileURLWithPath: indexPath))), path: indexPath)
    #expect(index.shardFiles.count == 5)
    let shards = try Dictionary(
      uniqueKeysWithValues: index.shardFiles.map { ($0, try PickleCheckpointFile(path: "\(directory)/\($0)")) })
    let golden = try SafeTensorsFile(path: PickleFixtures.path("hf-sharded-safetensors/model.safetensors"))
    for (tensorName, shard) in index.weightMap {
      #expect(shards[shard]!.entry(named: tensorName) != nil, "\(tensorName) not in \(shard)")
    }
    for expected in golden.header.tensors {
      let shard = try #require(index.weightMap.first { $0.tensor == expected.name }?.file)
      let file = shards[shard]!
      guard case .tensor(let tensor)? = file.entry(named: expected.name)?.value else {
        Issue.record("\(expected.name) missing")
        continue
      }
      #expect(try file.bytes(of: tensor) == golden.bytes(of: expected), "\(expected.name)")
    }
  }
}

@Suite("torchao pickle fixtures equal flatten_tensor_state_dict")
struct TorchAOPickleFixtureTests {
  @Test(
    "every part, plain tensor and metadata entry equals torchao's flattening",
    arguments: ["int8wo", "int8dq", "fp8wo", "fp8dq", "intx4", "int4"])
  func flattened(name: String) throws {
    let file = try PickleCheckpointFile(path: PickleFixtures.path("ao/\(name)/pytorch_model.bin"))
    let golden = try SafeTensorsFile(path: PickleFixtures.path("ao/\(name)/expected.safetensors"))
    let metadata = try #require(golden.header.metadata)
    let expectedNames = try TorchAOMetadata(decoding: metadata).entries.map(\.name)
    #expect(file.entries.map(\.name) == expectedNames)
    var stored = 0
    var subclasses = 0
    for entry in file.entries {
      switch entry.value {
      case .tensor(let tensor):
        let expected = try golden.tensor(named: entry.name)
        #expect(tensor.dtype == expected.dtype && tensor.shape == expected.shape, "\(entry.name)")
        #expect(try file.bytes(of: tensor) == golden.bytes(of: expected), "\(entry.name)")
        #expect(metadata[entry.name] == TensorDescription.plainTensor.encoded())
        stored += 1
      case .subclass(let subclass):
        subclasses += 1
        // The exact text json.dumps wrote, and the same value through the project's decoder.
        #expect(subclass.description.encoded() == metadata[entry.name], "\(entry.name)")
        #expect(try TensorDescription(decoding: metadata[entry.name]!, tensor: entry.name) == subclass.description)
        for part in subclass.parts {
          let expected = try golden.tensor(named: subclass.storedName(of: part, entry: entry.name))
          #expect(
            part.tensor.dtype == expected.dtype && part.tensor.shape == expected.shape, "\(entry.name) \(part.name)")
          #expect(try file.bytes(of: part.tensor) == golden.bytes(of: expected), "\(entry.name) \(part.name)")
          stored += 1
        }
      case .affineQuantized:
        Issue.record("\(entry.name) read as an AffineQuantizedTensor")
      }
    }
    #expect(subclasses == 7)
    #expect(stored == golden.header.tensors.count)
  }
}

@Suite("Legacy AffineQuantizedTensor pickles")
struct AffineQuantizedFixtureTests {
  @Test(
    "plain layouts dequantize bit for bit to torchao 0.12's dequantize()", arguments: ["int8wo", "int8dq", "fp8wo"])
  func dequantized(name: String) throws {
    let file = try PickleCheckpointFile(path: PickleFixtures.path("aqt/\(name).pt"))
    let golden = try SafeTensorsFile(path: PickleFixtures.path("aqt/\(name).dequantized.safetensors"))
    guard case .affineQuantized(let weight)? = file.entry(named: "0.weight")?.value else {
      Issue.record("0.weight is not an AffineQuantizedTensor")
      return
    }
    let expected = try golden.tensor(named: "0.weight")
    #expect(weight.shape == expected.shape)
    #expect(weight.dtype.rawValue == expected.dtype.rawValue)
    #expect(try file.dequantizedBytes(of: weight) == golden.bytes(of: expected))
    #expect((weight.inputQuantization != nil) == (name == "int8dq"))
    #expect(weight.layout == (name == "fp8wo" ? .float8 : .plain))
    guard case .tensor(let bias)? = file.entry(named: "0.bias")?.value else {
      Issue.record("0.bias is not a tensor")
      return
    }
    #expect(try file.bytes(of: bias) == golden.bytes(of: golden.tensor(named: "0.bias")))
  }

  @Test("row chunks dequantize to the same bytes as the whole weight")
  func chunks() throws {
    let file = try PickleCheckpointFile(path: PickleFixtures.path("aqt/int8wo.pt"))
    guard case .affineQuantized(let weight)? = file.entry(named: "0.weight")?.value else {
      Issue.record("0.weight is not an AffineQuantizedTensor")
      return
    }
    let whole = try file.dequantizedBytes(of: weight)
    let data = try file.bytes(of: weight.data)
    let scale = try file.bytes(of: weight.scale)
    let zeroPoint = try weight.zeroPoint.map { try file.bytes(of: $0) }
    var pieces: [UInt8] = []
    for start in stride(from: 0, to: weight.rowCount, by: 5) {
      let rows = start..<min(start + 5, weight.rowCount)
      let chunk = Array(data[rows.lowerBound * weight.dataRowByteCount..<rows.upperBound * weight.dataRowByteCount])
      var output = [UInt8](repeating: 0, count: rows.count * weight.outputRowByteCount)
      try chunk.withUnsafeBytes { chunk in
        try scale.withUnsafeBytes { scale in
          try output.withUnsafeMutableBytes { output in
            if let zeroPoint {
              try zeroPoint.withUnsafeBytes { zeroPoint in
                try weight.dequantize(rows: rows, data: chunk, scale: scale, zeroPoint: zeroPoint, into: output)
              }
            } else {
              try weight.dequantize(rows: rows, data: chunk, scale: scale, zeroPoint: nil, into: output)
            }
          }
        }
      }
      pieces += output
    }
    #expect(pieces == whole)
  }

  @Test("a packed layout is refused, saying packed AQT layouts are not supported")
  func packed() {
    let path = PickleFixtures.path("aqt/int4wo_cpu.pt")
    do {
      _ = try PickleCheckpointFile(path: path)
      Issue.record("read a packed layout")
    } catch {
      #expect(error.code == .affineQuantized)
      #expect(error.message.contains("packed AQT layouts are not supported"))
      #expect(error.tensor == "0.weight")
    }
  }
}
