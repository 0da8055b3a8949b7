import Foundation
import Pickle
import Testing

@Suite("Hostile pickle fixtures are refused")
struct AdversarialFixtureTests {
  /// Every hostile fixture and the rule that refuses it.
  static let refusals: [String: PickleError.Code] = [
    "append_on_dict.pt": .malformedPickle, "big_endian.pt": .bigEndian, "conj_metadata.pt": .unsupportedTensor,
    "deep_nesting.pt": .tooDeep, "global_builtins_eval.pt": .global, "global_os_system_in_dict.pt": .global,
    "global_posix_system.pt": .global, "global_via_memo.pt": .global, "inst_os_system.pt": .opcode,
    "legacy_big_endian.pt": .bigEndian, "legacy_storage_truncated.pt": .storageSize,
    "long1_huge_int.pt": .malformedPickle, "mark_left_open.pt": .malformedPickle,
    "memo_bomb_key.pt": .unexpectedObject, "memo_bomb_value.pt": .unexpectedObject,
    "meta_tensor.pt": .unsupportedTensor, "newobj_unlisted_class.pt": .global, "non_string_key.pt": .unexpectedObject,
    "not_a_checkpoint.bin": .unknownFormat, "obj_opcode.pt": .global, "persid_not_storage.pt": .malformedPickle,
    "quantized_tensor.pt": .unsupportedTensor, "rebuild_wrong_arity.pt": .unexpectedObject,
    "reduce_callable_from_rebuild_args.pt": .global, "setitem_on_tensor.pt": .malformedPickle,
    "setitems_on_list.pt": .malformedPickle, "sparse_tensor.pt": .unsupportedTensor,
    "stack_global_os_system.pt": .global, "stack_leftover.pt": .malformedPickle,
    "storage_missing_record.pt": .storageSize, "storage_numel_mismatch.pt": .storageSize,
    "storage_numel_overflow.pt": .storageSize, "string_length_lie.pt": .malformedPickle,
    "subclass_dunder_state.pt": .subclass, "subclass_unlisted_class.pt": .global, "tar_format.pt": .tarFormat,
    "top_level_list.pt": .unexpectedObject, "torch_unlisted_function.pt": .global, "torchscript.pt": .torchScript,
    "trailing_after_stop.pt": .malformedPickle, "truncated_pickle.pt": .malformedPickle,
    "undefined_memo.pt": .malformedPickle, "view_huge_stride.pt": .viewOutOfBounds,
    "view_negative_offset.pt": .invalidView, "view_negative_size.pt": .invalidView,
    "view_negative_stride.pt": .invalidView, "view_numel_overflow_zero_stride.pt": .invalidView,
    "view_out_of_bounds.pt": .viewOutOfBounds, "zip_absolute_path.pt": .zipEntryName, "zip_deflated.pt": .zipEntry,
    "zip_duplicate_entry.pt": .zipEntryName, "zip_entry_size_lie.pt": .zipFormat, "zip_no_data_pkl.pt": .zipFormat,
    "zip_path_traversal.pt": .zipEntryName, "zip_truncated.pt": .zipFormat, "zip_two_prefixes.pt": .zipEntryName,
  ]

  static let hostile: [String] = PickleFixtures.manifest.filter { $0.value["kind"]?.string == "adversarial" }
    .map { String($0.key.dropFirst("adversarial/".count)) }

  @Test("the table covers every hostile file of the manifest, and there are at least 20")
  func coverage() {
    #expect(Set(Self.hostile) == Set(Self.refusals.keys))
    #expect(Self.hostile.count >= 20)
  }

  @Test("each is refused within a second, by its rule, naming the file, and no canary appears", arguments: hostile)
  func refused(name: String) {
    let path = PickleFixtures.path("adversarial/\(name)")
    let start = ContinuousClock.now
    do {
      let file = try PickleCheckpointFile(path: path)
      Issue.record("\(name): read \(file.entries.count) entries")
    } catch {
      #expect(error.code == Self.refusals[name], "\(name): \(error)")
      #expect(error.file == path)
      #expect(!error.message.isEmpty)
    }
    #expect(ContinuousClock.now - start < .seconds(1), "\(name) took too long")
    #expect(!FileManager.default.fileExists(atPath: PickleFixtures.canary))
  }

  @Test("refusals name the opcode, the global or the byte offset")
  func messages() throws {
    func refusal(_ name: String) -> PickleError? {
      do {
        _ = try PickleCheckpointFile(path: PickleFixtures.path("adversarial/\(name)"))
        return nil
      } catch { return error }
    }
    let posix = try #require(refusal("global_posix_system.pt"))
    #expect(posix.message.contains("posix.system") && posix.offset != nil)
    #expect(try #require(refusal("inst_os_system.pt")).message.contains("INST"))
    #expect(try #require(refusal("stack_global_os_system.pt")).message.contains("os.system"))
    #expect(try #require(refusal("global_via_memo.pt")).message.contains("subprocess.check_call"))
    #expect(try #require(refusal("view_out_of_bounds.pt")).tensor == "w")
    #expect(try #require(refusal("quantized_tensor.pt")).message.contains("quantized"))
  }

  @Test("the control file, crafted the same way, loads")
  func control() throws {
    let file = try PickleCheckpointFile(path: PickleFixtures.path("adversarial/control_good.pt"))
    #expect(!file.entries.isEmpty)
  }
}
