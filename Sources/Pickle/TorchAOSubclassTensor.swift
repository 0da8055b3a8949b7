import SafeTensors
import TorchAO

/// A torchao 0.18 tensor subclass read from a pickle (`Int8Tensor`, `Float8Tensor`, …): its data
/// parts as plain tensors, and the description torchao's `flatten_tensor_state_dict` writes for
/// it.
///
/// Stored in torchao's safetensors layout, part `p` of the state-dict entry `name` goes under
/// ``storedName(of:entry:)`` (`<module>._<param>_<p>`), and the entry's metadata is
/// ``description``.
public struct TorchAOSubclassTensor: Sendable, Equatable {
  /// One data part (`qdata`, `scale`, …).
  public struct Part: Sendable, Equatable {
    /// The part name, as in `_tensor_data_names`.
    public var name: String
    /// The part's tensor.
    public var tensor: PickleTensor

    public init(name: String, tensor: PickleTensor) {
      self.name = name
      self.tensor = tensor
    }
  }

  /// The subclass, its attributes and its part names, as torchao encodes them.
  public var description: TensorDescription
  /// The parts present, in `_tensor_data_names` order.
  public var parts: [Part]
  /// The wrapper tensor's dtype as torch names it (`bfloat16`): the dtype of the dequantized
  /// weight.
  public var dtype: String
  /// The wrapper tensor's shape: the weight's logical shape.
  public var shape: [Int]

  public init(description: TensorDescription, parts: [Part], dtype: String, shape: [Int]) {
    self.description = description
    self.parts = parts
    self.dtype = dtype
    self.shape = shape
  }

  /// The name torchao's flattening stores part `part` of the entry `entry` under.
  public func storedName(of part: Part, entry: String) -> String {
    FlattenedName.name(parameter: entry, part: part.name)
  }

  /// Reads a subclass from its wrapper call: the state keys must be the class's attribute and
  /// part names (no others, none twice), required parts present, attributes encoded by
  /// ``AttributeEncoder``; `dtype` and `shape` come from the wrapper where torchao reads them
  /// there.
  init(_ wrapper: WrapperSubclass, tensors: TensorMatcher) throws(PickleError) {
    let name = wrapper.type.name
    guard let spec = TorchAONames.subclasses[name] else {
      throw PickleError(.subclass, "tensor subclass \(wrapper.type) is not on the allowlist", offset: wrapper.offset)
    }
    var encoder = AttributeEncoder()
    var attributes: [String: JSONValue] = [:]
    var found: [String: PickleTensor] = [:]
    do throws(PickleError) {
      for (key, value) in wrapper.state.members {
        if spec.parts.contains(key) {
          if case .none = value {
            guard spec.optionalParts.contains(key) else { throw PickleError(.subclass, "\(name): part \(key) is None") }
            continue
          }
          do throws(PickleError) {
            found[key] = try tensors.tensor(value)
          } catch {
            throw PickleError(error.code, "\(name) part \(key): \(error.message)", offset: error.offset)
          }
        } else if key == "_is_param" {
          // torch marks a subclass held as a module's Parameter; torchao's encoder ignores it.
          guard case .bool = value else { throw PickleError(.subclass, "\(name): _is_param is \(value.kind)") }
        } else if spec.attributes.contains(key) && !spec.wrapperAttributes.contains(key) {
          attributes[key] = try encoder.encode(value)
        } else {
          throw PickleError(.subclass, "\(name): state key '\(key)' is not one of its attributes or parts")
        }
      }
    } catch {
      var located = error
      if located.offset == nil { located.offset = wrapper.offset }
      throw located
    }
    if spec.wrapperAttributes.contains("dtype") {
      attributes["dtype"] = .object([
        JSONMember("_type", .string("torch.dtype")), JSONMember("_data", .string(wrapper.dtype)),
      ])
    }
    if spec.wrapperAttributes.contains("shape") {
      attributes["shape"] = .array(wrapper.shape.map { .number(String($0)) })
    }
    var members: [JSONMember] = []
    for key in spec.attributes {
      guard let value = attributes[key] else {
        throw PickleError(.subclass, "\(name): the state has no attribute '\(key)'", offset: wrapper.offset)
      }
      members.append(JSONMember(key, value))
    }
    for key in spec.requiredParts where found[key] == nil {
      throw PickleError(.subclass, "\(name): the state has no part '\(key)'", offset: wrapper.offset)
    }
    let parts = spec.parts.compactMap { key in found[key].map { Part(name: key, tensor: $0) } }
    let description = TensorDescription(subclass: name, attributes: members, tensorDataNames: parts.map(\.name))
    self.init(description: description, parts: parts, dtype: wrapper.dtype, shape: wrapper.shape)
  }
}
