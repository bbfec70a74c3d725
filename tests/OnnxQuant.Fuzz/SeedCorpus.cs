using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Google.Protobuf;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;

namespace OnnxQuant.Fuzz;

/// <summary>
/// Writes the committed seed corpus (tests/OnnxQuant.Fuzz/corpus): small valid inputs of every form each reader takes,
/// so the fuzzer starts from inputs that reach deep into the reader. Regenerate with
/// <c>dotnet run --project tests/OnnxQuant.Fuzz -c Release -- seeds tests/OnnxQuant.Fuzz/corpus</c>.
/// </summary>
public static class SeedCorpus
{
    public static void Write(string root)
    {
        Onnx(Path.Combine(root, "onnx"));
        Texts(Path.Combine(root, "genai-config"), GenAiConfigs);
        Texts(Path.Combine(root, "recipe"), Recipes);
        Npy(Path.Combine(root, "npy"));
        Npz(Path.Combine(root, "npz"));
        Tokenizers(Path.Combine(root, "tokenizer"));
        Data(Path.Combine(root, "data"));
    }

    // Every exporter family the analysis knows, one layer of width 8, weights over 128 bytes in model.onnx.data.
    private static void Onnx(string folder)
    {
        var tiny = new FixtureOptions { Layers = 1, Hidden = 8, Heads = 2, Intermediate = 16, Vocab = 16, MaxPositions = 8 };
        var seeds = new Dictionary<string, FixtureOptions>
        {
            ["torch-llama"] = tiny,
            ["genai-gqa"] = tiny with { Family = FixtureFamily.GenAiLlama, Attention = GenAiAttention.GroupQueryAttention, KvCache = true },
            ["optimum"] = tiny with { Family = FixtureFamily.OptimumLlama },
            ["bert"] = tiny with { Family = FixtureFamily.Bert },
            ["fp16-if"] = tiny with { Fp16 = true, Subgraphs = SubgraphShape.IfQueryProjection },
        };
        Directory.CreateDirectory(folder);
        using var scratch = new Scratch();
        foreach (var (name, options) in seeds)
        {
            string model = FixtureModels.Save(options, scratch.Folder, "model.onnx", new SaveOptions { ExternalThreshold = 128, Alignment = 64 });
            string data = model + ".data";
            File.WriteAllBytes(Path.Combine(folder, name), FuzzTargets.OnnxInput(File.ReadAllBytes(model),
                File.Exists(data) ? File.ReadAllBytes(data) : []));
            scratch.Clear();
        }
    }

    private static readonly Dictionary<string, string> GenAiConfigs = new()
    {
        ["plain"] = """{"model": {"type": "llama", "context_length": 128, "decoder": {"filename": "model.onnx", "head_size": 4, "hidden_size": 8, "inputs": {"input_ids": "input_ids"}, "num_attention_heads": 2, "num_hidden_layers": 1, "num_key_value_heads": 2}, "eos_token_id": 2, "vocab_size": 16}, "search": {"max_length": 64}}""",
        ["subfolder"] = """{"model": {"decoder": {"filename": "onnx/model.onnx", "session_options": {"provider_options": [{"cuda": {}}]}}}}""",
    };

    private static readonly Dictionary<string, string> Recipes = new()
    {
        ["mixed"] = """
            { "recipe": 1,
              "passes": [ { "pass": "fold-weights" }, { "pass": "w8a8", "format": "dynamic" },
                          { "pass": "awq", "gridPoints": 20, "clip": true }, { "pass": "w4-rewrite", "blockSize": 64, "symmetric": false } ],
              "linears": { "default": "float", "overrides": [ { "match": "/model/layers.0/self_attn/?_proj/MatMul", "scheme": "w8a8" },
                                                               { "match": "/model/layers.0/mlp/*", "scheme": "w4" } ] },
              "calibration": { "samples": 16, "seqLen": 128 }, "verification": { "enabled": true, "samples": 4, "length": 128 },
              "gates": { "maxPplIncrease": 10 } }
            """,
        ["smooth"] = """
            { "recipe": 1,
              "passes": [ { "pass": "fold-weights" }, { "pass": "smoothquant", "alpha": "auto", "alphaGrid": [0.3, 0.5, 0.8], "scope": "all" },
                          { "pass": "w8a8", "format": "qdq", "reducedRange": false, "outputRangeMargin": 1.25 } ],
              "linears": { "default": "w8a8", "includeLmHead": false } }
            """,
        ["budget"] = """
            { "recipe": 1,
              "passes": [ { "pass": "fold-weights" }, { "pass": "awq" }, { "pass": "bits-plan", "bitsBudget": 5, "sensitivity": "model" },
                          { "pass": "w4-rewrite", "rounding": "gptq", "damp": "auto", "actOrder": true },
                          { "pass": "embeddings", "bits": 8, "lmHeadBits": 4, "blockSize": 32 } ],
              "linears": { "default": "w4", "includeLmHead": true } }
            """,
    };

    private static void Npy(string folder)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, "int64-2x4"), NpyBytes("<i8", "(2, 4)", 8, 8));
        File.WriteAllBytes(Path.Combine(folder, "int32-3"), NpyBytes("<i4", "(3,)", 3, 4));
        File.WriteAllBytes(Path.Combine(folder, "float32-2x2"), NpyBytes("<f4", "(2, 2)", 4, 4));
    }

    private static void Npz(string folder)
    {
        Directory.CreateDirectory(folder);
        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, bytes) in new[] { ("input_ids.npy", NpyBytes("<i8", "(2, 4)", 8, 8)), ("attention_mask.npy", NpyBytes("<i8", "(2, 4)", 8, 8)) })
            {
                using var entry = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
                entry.Write(bytes);
            }
        }
        File.WriteAllBytes(Path.Combine(folder, "ids-mask"), buffer.ToArray());
    }

    // numpy's format 1.0: magic, version, header length, a Python dict literal padded to 64 bytes, the data.
    private static byte[] NpyBytes(string descr, string shape, int count, int itemSize)
    {
        string dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}";
        int total = 10 + dict.Length + 1;
        string header = dict.PadRight(dict.Length + (64 - total % 64) % 64) + "\n";
        var bytes = new List<byte> { 0x93 };
        bytes.AddRange("NUMPY"u8.ToArray());
        bytes.AddRange([1, 0, (byte)header.Length, (byte)(header.Length >> 8)]);
        bytes.AddRange(Encoding.Latin1.GetBytes(header));
        for (int i = 0; i < count * itemSize; i++)
            bytes.Add((byte)(i % itemSize == 0 ? i / itemSize + 1 : 0));
        return bytes.ToArray();
    }

    private static void Tokenizers(string folder)
    {
        Directory.CreateDirectory(folder);
        Tokenizer(folder, "json-bpe", 0, """{"model": {"type": "BPE", "vocab": {"a": 0, "t": 1, "h": 2, "e": 3, "th": 4, "the": 5, "Ġ": 6, "Ġthe": 7}, "merges": ["t h", "th e", "Ġ the"]}, "pre_tokenizer": {"type": "ByteLevel"}, "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}], "special_tokens": {"<s>": {"ids": [0]}}}}"""u8);
        Tokenizer(folder, "json-wordpiece", 0, """{"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[PAD]": 3, "[MASK]": 4, "the": 5, "##s": 6, "a": 7}}, "normalizer": {"type": "BertNormalizer", "lowercase": true}, "post_processor": {"type": "BertProcessing", "cls": ["[CLS]", 1], "sep": ["[SEP]", 2]}}"""u8);
        Tokenizer(folder, "sentencepiece", 1, SentencePieceModel());
        Tokenizer(folder, "vocab-merges", 2, [.. """{"a": 0, "t": 1, "h": 2, "e": 3, "th": 4, "the": 5}"""u8, 0, .. "#version: 0.2\nt h\nth e\n"u8]);
        Tokenizer(folder, "vocab-txt", 3, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n##s\na\n"u8);
    }

    private static void Tokenizer(string folder, string name, byte selector, ReadOnlySpan<byte> body) =>
        File.WriteAllBytes(Path.Combine(folder, name), [selector, .. body]);

    // sentencepiece_model.proto by field number: pieces (1: piece 1, score 2, type 3), trainer_spec (2: model_type 3,
    // unk_id 40, bos_id 41, eos_id 42), normalizer_spec (3: name 1, add_dummy_prefix 3, escape_whitespaces 5).
    private static byte[] SentencePieceModel()
    {
        using var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer);
        var pieces = new (string Piece, float Score, int Type)[] { ("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3), ("▁the", -1, 1), ("▁a", -2, 1), ("t", -3, 1), ("h", -4, 1), ("e", -5, 1), ("▁", -6, 1) };
        foreach (var (piece, score, type) in pieces)
            WriteMessage(output, 1, o => { o.WriteTag(1, WireFormat.WireType.LengthDelimited); o.WriteString(piece); o.WriteTag(2, WireFormat.WireType.Fixed32); o.WriteFloat(score); o.WriteTag(3, WireFormat.WireType.Varint); o.WriteInt32(type); });
        WriteMessage(output, 2, o => { o.WriteTag(3, WireFormat.WireType.Varint); o.WriteInt32(2); o.WriteTag(40, WireFormat.WireType.Varint); o.WriteInt32(0); o.WriteTag(41, WireFormat.WireType.Varint); o.WriteInt32(1); o.WriteTag(42, WireFormat.WireType.Varint); o.WriteInt32(2); });
        WriteMessage(output, 3, o => { o.WriteTag(1, WireFormat.WireType.LengthDelimited); o.WriteString("identity"); o.WriteTag(3, WireFormat.WireType.Varint); o.WriteBool(true); o.WriteTag(5, WireFormat.WireType.Varint); o.WriteBool(true); });
        output.Flush();
        return buffer.ToArray();
    }

    private static void WriteMessage(CodedOutputStream output, int field, Action<CodedOutputStream> body)
    {
        using var inner = new MemoryStream();
        var o = new CodedOutputStream(inner);
        body(o);
        o.Flush();
        output.WriteTag(field, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFrom(inner.ToArray()));
    }

    private static void Data(string folder)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, "ids"), [0, .. "1 2 3 4\n5 6 7\n"u8]);
        File.WriteAllBytes(Path.Combine(folder, "jsonl-text"), [1, .. "\"It is a truth.\"\n{\"text\": \"universally acknowledged\"}\n"u8]);
        File.WriteAllBytes(Path.Combine(folder, "jsonl-ids"), [1, .. "[1, 2, 3]\n{\"input_ids\": [4, 5, 0], \"attention_mask\": [1, 1, 0]}\n"u8]);
        File.WriteAllBytes(Path.Combine(folder, "text"), [2, .. "It is a truth universally acknowledged.\n"u8]);
    }

    private static void Texts(string folder, Dictionary<string, string> texts)
    {
        Directory.CreateDirectory(folder);
        foreach (var (name, text) in texts)
            File.WriteAllText(Path.Combine(folder, name), text);
    }
}
