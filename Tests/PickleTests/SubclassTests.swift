import Foundation
import SafeTensors
import Testing
import TorchAO

@testable import Pickle

/// A state dict `{"w": Float8Tensor}` whose state is written by `state` between the dict's
/// EMPTY_DICT and its SETITEMS (MARK already open), over storages `0` (qdata, 16 bytes, F8) and
/// `1` (scale, 4 floats).
func float8Pickle(className: String = "Float8Tensor", _ state: @escaping (inout PickleWriter) -> Void) -> [UInt8] {
  PickleWriter.stateDict([
    (
      "lin.weight",
      { writer in
        writer.global("torch._tensor", "_rebuild_from_type_v2")
        writer.mark()
        writer.global("torch._utils", "_rebuild_wrapper_subclass")
        writer.global("torchao.quantization", className)
        writer.put(200)
        writer.mark()
        writer.get(200)
        writer.global("torch", "bfloat16")
        writer.intTuple([4, 4])
        writer.intTuple([4, 1])
        writer.int(0)
        writer.global("torch.serialization", "_get_layout")
        writer.string("torch.strided")
        writer.op(0x85)
        writer.reduce()
        writer.global("torch", "device")
        writer.string("cpu")
        writer.op(0x85)
        writer.reduce()
        writer.bool(false)
        writer.tuple()
        writer.emptyDict()
        writer.mark()
        state(&writer)
        writer.setItems()
        writer.tuple()
        writer.reduce()
      }
    )
  ])
}

/// The usual Float8Tensor state up to the attributes `attributes` writes.
func float8State(_ attributes: @escaping (inout PickleWriter) -> Void) -> (inout PickleWriter) -> Void {
  { writer in
    writer.string("qdata")
    writer.tensorV3("float8_e4m3fn", key: "0", bytes: 16, shape: [4, 4], strides: [4, 1])
    writer.string("scale")
    writer.tensor(key: "1", count: 4, shape: [4, 1], strides: [1, 1])
    attributes(&writer)
  }
}

/// `Float8MMConfig(emulate=False, use_fast_accum=True, pad_inner_dim=False)` by NEWOBJ or REDUCE.
func mmConfig(_ writer: inout PickleWriter, newObject: Bool) {
  writer.global("torchao.float8.inference", "Float8MMConfig")
  writer.bool(false)
  writer.bool(true)
  writer.bool(false)
  writer.op(0x87)
  if newObject { writer.newObject() } else { writer.reduce() }
}

func standardAttributes(newObject: Bool) -> (inout PickleWriter) -> Void {
  { writer in
    writer.string("block_size")
    writer.emptyList()
    writer.mark()
    writer.int(1)
    writer.int(4)
    writer.op(0x65)
    writer.string("mm_config")
    mmConfig(&writer, newObject: newObject)
    writer.string("act_quant_kwargs")
    writer.global("torchao.quantization.quantize_.workflows.float8.float8_tensor", "QuantizeTensorToFloat8Kwargs")
    writer.emptyTuple()
    writer.newObject()
    writer.emptyDict()
    writer.mark()
    for (key, body) in [
      ("float8_dtype", { (w: inout PickleWriter) in w.global("torch", "float8_e4m3fn") }),
      (
        "granularity",
        { (w: inout PickleWriter) in
          w.global("torchao.quantization.granularity", "PerRow")
          w.emptyTuple()
          w.newObject()
          w.emptyDict()
          w.string("dim")
          w.int(-1)
          w.setItem()
          w.build()
        }
      ),
      ("mm_config", { (w: inout PickleWriter) in w.none() }),
      ("hp_value_lb", { (w: inout PickleWriter) in w.none() }),
      ("hp_value_ub", { (w: inout PickleWriter) in w.op(0x47, le(UInt64(448.0.bitPattern)).reversed()) }),
      (
        "kernel_preference",
        { (w: inout PickleWriter) in
          w.global("torchao.quantization.quantize_.common.kernel_preference", "KernelPreference")
          w.string("auto")
          w.op(0x85)
          w.reduce()
        }
      ),
    ] {
      writer.string(key)
      body(&writer)
    }
    writer.setItems()
    writer.build()
    writer.string("kernel_preference")
    writer.global("torchao.quantization.quantize_.common.kernel_preference", "KernelPreference")
    writer.string("torch")
    writer.op(0x85)
    writer.reduce()
  }
}

func storages() -> [(String, [UInt8])] {
  [("0", [UInt8](repeating: 0x38, count: 16)), ("1", floatStorage(4))]
}

func read(_ pickle: [UInt8]) throws(PickleError) -> PickleCheckpointFile {
  try PickleCheckpointFile(path: TorchZipWriter(pickle: pickle, storages: storages()).write())
}

func subclassRefusal(_ pickle: [UInt8]) -> PickleError? {
  do {
    _ = try read(pickle)
    return nil
  } catch { return error }
}

@Suite("torchao subclasses from pickles")
struct SubclassTests {
  static let expected =
    #"{"_type": "Float8Tensor", "_data": {"block_size": [1, 4], "mm_config": {"_type": "Float8MMConfig", "_data": {"emulate": false, "use_fast_accum": true, "pad_inner_dim": false}}, "act_quant_kwargs": {"_type": "QuantizeTensorToFloat8Kwargs", "_data": {"float8_dtype": {"_type": "torch.dtype", "_data": "float8_e4m3fn"}, "granularity": {"_type": "PerRow", "_data": {"dim": -1}}, "mm_config": null, "hp_value_lb": null, "hp_value_ub": 448.0, "kernel_preference": {"_type": "KernelPreference", "_data": "AUTO"}}}, "kernel_preference": {"_type": "KernelPreference", "_data": "TORCH"}, "dtype": {"_type": "torch.dtype", "_data": "bfloat16"}}, "_tensor_data_names": ["qdata", "scale"]}"#

  @Test("Float8MMConfig, a NamedTuple, is read from NEWOBJ or REDUCE with positional fields", arguments: [true, false])
  func float8MMConfig(newObject: Bool) throws {
    let file = try read(float8Pickle(float8State(standardAttributes(newObject: newObject))))
    guard case .subclass(let subclass) = file.entries[0].value else {
      Issue.record("not a subclass")
      return
    }
    #expect(subclass.description.encoded() == Self.expected)
    #expect(try TensorDescription(decoding: Self.expected, tensor: "w") == subclass.description)
    #expect(subclass.parts.map(\.name) == ["qdata", "scale"])
    #expect(subclass.storedName(of: subclass.parts[0], entry: "lin.weight") == "lin._weight_qdata")
    #expect(subclass.dtype == "bfloat16" && subclass.shape == [4, 4])
  }

  @Test("a state key outside the class's names is refused, dunder keys first")
  func unknownKeys() throws {
    let extra = float8Pickle(
      float8State { writer in
        standardAttributes(newObject: true)(&writer)
        writer.string("payload")
        writer.none()
      })
    #expect(try #require(subclassRefusal(extra)).message.contains("'payload'"))
    let dunder = float8Pickle(
      float8State { writer in
        standardAttributes(newObject: true)(&writer)
        writer.string("__class__")
        writer.global("torch", "Tensor")
      })
    let error = try #require(subclassRefusal(dunder))
    #expect(error.code == .subclass && error.message.contains("__class__") && error.tensor == "lin.weight")
  }

  @Test("a missing part or attribute is refused")
  func missing() throws {
    let noScale = float8Pickle { writer in
      writer.string("qdata")
      writer.tensorV3("float8_e4m3fn", key: "0", bytes: 16, shape: [4, 4], strides: [4, 1])
      standardAttributes(newObject: true)(&writer)
    }
    #expect(try #require(subclassRefusal(noScale)).message.contains("'scale'"))
    let noKernel = float8Pickle(
      float8State { writer in
        writer.string("block_size")
        writer.intTuple([1, 4])
        writer.string("mm_config")
        writer.none()
        writer.string("act_quant_kwargs")
        writer.none()
      })
    #expect(try #require(subclassRefusal(noKernel)).message.contains("kernel_preference"))
  }

  @Test("a class off the allowlist is refused at its global; an unknown enum value is refused")
  func offList() throws {
    #expect(try #require(subclassRefusal(float8Pickle(className: "NF4Tensor", float8State { _ in }))).code == .global)
    let badEnum = float8Pickle(
      float8State { writer in
        writer.string("block_size")
        writer.intTuple([1, 4])
        writer.string("mm_config")
        writer.none()
        writer.string("act_quant_kwargs")
        writer.none()
        writer.string("kernel_preference")
        writer.global("torchao.quantization.quantize_.common.kernel_preference", "KernelPreference")
        writer.string("fbgemm")
        writer.op(0x85)
        writer.reduce()
      })
    #expect(try #require(subclassRefusal(badEnum)).message.contains("fbgemm"))
  }

  @Test("a memo bomb as an attribute value is refused within a bounded amount of work")
  func attributeBomb() throws {
    let bomb = float8Pickle(
      float8State { writer in
        writer.string("block_size")
        writer.mark()
        writer.int(1)
        writer.put(0)
        for level in 1...60 {
          writer.get(UInt8(level - 1))
          writer.op(0x86)
          writer.put(UInt8(level))
        }
        writer.tuple()
      })
    let start = ContinuousClock.now
    #expect(try #require(subclassRefusal(bomb)).code == .tooDeep)
    #expect(ContinuousClock.now - start < .seconds(1))
  }
}

@Suite("The torchao allowlists agree")
struct AllowlistTests {
  @Test("the pickle reader knows exactly torchao's safetensors subclasses, and writes only allowed _types")
  func agree() {
    #expect(Set(TorchAONames.subclasses.keys) == TensorDescription.allowedSubclasses)
    let written = Set(TorchAONames.dataclasses.keys).union(TorchAONames.namedTuples.keys).union(TorchAONames.enums.keys)
    #expect(written.isSubset(of: TensorDescription.allowedAttributeTypes))
    for (name, subclass) in TorchAONames.subclasses {
      #expect(Set(subclass.parts).count == subclass.parts.count, "\(name)")
      #expect(subclass.wrapperAttributes.isSubset(of: subclass.attributes), "\(name)")
    }
  }
}
