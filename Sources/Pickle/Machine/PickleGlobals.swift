import SafeTensors

/// The globals a pickle may name: what torch.save writes for tensors, and the torchao classes,
/// enums and config types of the allowlist. A global is only ever a name; none is imported or
/// called.
enum PickleGlobals {
  /// torch's typed storage classes (`torch.FloatStorage`, …) and the element type of each.
  static let storageTypes: [String: DType] = [
    "DoubleStorage": .f64, "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16,
    "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8, "ByteStorage": .u8,
    "BoolStorage": .bool,
  ]

  /// `torch.<name>` dtypes that tensors may have, and their safetensors type.
  static let tensorDTypes: [String: DType] = [
    "float64": .f64, "float32": .f32, "float16": .f16, "bfloat16": .bf16, "int64": .i64, "int32": .i32,
    "int16": .i16, "int8": .i8, "uint8": .u8, "bool": .bool, "uint16": .u16, "uint32": .u32, "uint64": .u64,
    "float8_e4m3fn": .f8e4m3, "float8_e5m2": .f8e5m2, "float8_e4m3fnuz": .f8e4m3fnuz,
    "float8_e5m2fnuz": .f8e5m2fnuz, "float8_e8m0fnu": .f8e8m0,
  ]

  /// `torch.<name>` dtypes that may appear as attribute values (torchao's `target_dtype`,
  /// `elem_dtype`, …) but never as the element type of a stored tensor.
  static let attributeOnlyDTypes: Set<String> = [
    "float4_e2m1fn_x2", "int1", "int2", "int3", "int4", "int5", "int6", "int7", "uint1", "uint2", "uint3",
    "uint4", "uint5", "uint6", "uint7",
  ]

  /// Every `torch.<name>` dtype the pickle may name.
  static func isDType(_ name: String) -> Bool {
    tensorDTypes[name] != nil || attributeOnlyDTypes.contains(name)
  }

  private static let torchUtils: Set<String> = [
    "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
    "_rebuild_parameter_with_state", "_rebuild_wrapper_subclass",
  ]

  /// Globals of torch that name tensor kinds which are never read, and why.
  private static let refusedTensorKinds: [String: String] = [
    "torch._utils._rebuild_qtensor": "quantized tensors",
    "torch._utils._rebuild_sparse_tensor": "sparse tensors",
    "torch._utils._rebuild_sparse_csr_tensor": "sparse tensors",
    "torch._utils._rebuild_nested_tensor": "nested tensors",
    "torch._utils._rebuild_meta_tensor_no_storage": "meta tensors (which have no data)",
    "torch._utils._rebuild_device_tensor_from_numpy": "tensors built from numpy arrays",
    "torch._utils._rebuild_device_tensor_from_cpu_tensor": "tensors built on another device",
    "torch._utils._rebuild_xla_tensor": "XLA tensors", "torch._utils._rebuild_mtia_tensor": "MTIA tensors",
    "torch.ComplexFloatStorage": "complex tensors (safetensors has no complex type)",
    "torch.ComplexDoubleStorage": "complex tensors (safetensors has no complex type)",
    "torch.complex64": "complex tensors (safetensors has no complex type)",
    "torch.complex128": "complex tensors (safetensors has no complex type)",
    "torch.complex32": "complex tensors (safetensors has no complex type)",
    "torch.QInt8Storage": "quantized tensors", "torch.QUInt8Storage": "quantized tensors",
    "torch.QInt32Storage": "quantized tensors", "torch.QUInt4x2Storage": "quantized tensors",
    "torch.QUInt2x4Storage": "quantized tensors", "torch.qint8": "quantized tensors",
    "torch.quint8": "quantized tensors", "torch.qint32": "quantized tensors",
  ]

  /// Throws unless `global` is on the allowlist.
  ///
  /// - Throws: `unsupportedTensor` for torch's rebuilders of quantized, sparse, nested, meta,
  ///   device-built and complex tensors; `global` for anything else off the list.
  static func check(_ global: PickleGlobal, offset: Int) throws(PickleError) {
    let (module, name) = (global.module, global.name)
    let allowed: Bool
    switch module {
    case "collections": allowed = name == "OrderedDict"
    case "torch._utils": allowed = torchUtils.contains(name)
    case "torch._tensor": allowed = name == "_rebuild_from_type_v2"
    case "torch":
      allowed = ["Tensor", "Size", "device"].contains(name) || storageTypes[name] != nil || isDType(name)
    case "torch.cuda": allowed = storageTypes[name] != nil
    case "torch.storage": allowed = name == "UntypedStorage"
    case "torch.nn.parameter": allowed = name == "Parameter"
    case "torch.serialization": allowed = name == "_get_layout"
    default:
      allowed = (module == "torchao" || module.hasPrefix("torchao.")) && TorchAONames.isKnown(name)
    }
    if allowed { return }
    let key = module == "torch.cuda" ? "torch.\(name)" : global.description
    if let kind = refusedTensorKinds[key] {
      throw PickleError(.unsupportedTensor, "\(kind) are not supported (global \(global))", offset: offset)
    }
    throw PickleError(.global, "global \(global) is not on the allowlist", offset: offset)
  }
}
