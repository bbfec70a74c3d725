using System.Text.Json;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Tests.Cli;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Calibrate;

public sealed class TokenizerLoadingTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("oq-tok-").FullName;

    public void Dispose() => Directory.Delete(_folder, true);

    // A tiny byte-level BPE: "hello" and "Ġworld" (Ġ marks the space) are reachable only through these merges.
    private static readonly string[] Merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld"];
    private static readonly string[] BpeTokens =
        ["h", "e", "l", "o", "Ġ", "w", "r", "d", "!", "he", "ll", "hell", "hello", "Ġw", "or", "Ġwor", "ld", "Ġworld"];

    private static Dictionary<string, int> BpeVocab() => BpeTokens.Select((t, i) => (t, i)).ToDictionary(x => x.t, x => x.i);

    [Fact]
    public void Gpt2_vocab_and_merges_encode_through_the_merges()
    {
        File.WriteAllText(Path.Combine(_folder, "vocab.json"), JsonSerializer.Serialize(BpeVocab()));
        File.WriteAllLines(Path.Combine(_folder, "merges.txt"), ["#version: 0.2", .. Merges]);
        var tokenizer = TokenizerLoader.Load(null, Path.Combine(_folder, "model.onnx"));
        var v = BpeVocab();
        Assert.Equal(new[] { v["hello"], v["Ġworld"], v["!"] }, tokenizer.Encode("hello world!"));
        Assert.Equal(new[] { v["hell"], v["Ġw"], v["o"] }, tokenizer.Encode("hell wo"));
        Assert.Empty(tokenizer.Prefix);
        Assert.Contains("byte-level BPE", tokenizer.Description);
    }

    [Fact]
    public void A_tokenizer_json_with_the_same_bpe_gives_the_same_ids()
    {
        var json = new
        {
            model = new { type = "BPE", vocab = BpeVocab(), merges = Merges },
            pre_tokenizer = new { type = "ByteLevel", add_prefix_space = false },
            post_processor = (object?)null,
        };
        File.WriteAllText(Path.Combine(_folder, "tokenizer.json"), JsonSerializer.Serialize(json));
        var tokenizer = TokenizerLoader.Load(_folder, "unused.onnx");
        var v = BpeVocab();
        Assert.Equal(new[] { v["hello"], v["Ġworld"], v["!"] }, tokenizer.Encode("hello world!"));
    }

    [Fact]
    public void The_austen_bpe_reproduces_the_ids_of_its_training_tokenizer()
    {
        string folder = Path.Combine(CliHarness.RepoRoot(), "models", "austen-lm");
        var tokenizer = TokenizerLoader.Gpt2(Path.Combine(folder, "vocab.json"), Path.Combine(folder, "merges.txt"));
        using var check = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "tokenizer_check.json")));
        int samples = 0;
        foreach (var sample in check.RootElement.GetProperty("samples").EnumerateArray())
        {
            var expected = sample.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            Assert.Equal(expected, tokenizer.Encode(sample.GetProperty("text").GetString()!));
            samples++;
        }
        Assert.True(samples >= 3);
    }

    [Fact]
    public void A_wordpiece_vocab_lowercases_for_an_uncased_vocabulary_and_wraps_samples_in_cls_sep()
    {
        string[] vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "##s", ".", "emma"];
        File.WriteAllLines(Path.Combine(_folder, "vocab.txt"), vocab);
        var tokenizer = TokenizerLoader.Load(null, Path.Combine(_folder, "model.onnx"));
        int Id(string t) => Array.IndexOf(vocab, t);
        Assert.Equal(new[] { Id("the"), Id("cat"), Id("##s"), Id("sat"), Id("on"), Id("the"), Id("mat"), Id(".") }, tokenizer.Encode("The cats sat on the MAT."));
        Assert.Equal(new[] { Id("emma"), Id("[UNK]") }, tokenizer.Encode("Emma Woodhouse"));
        // Line breaks and tabs separate words as spaces do (Austen's text has a line break every ~70 characters).
        Assert.Equal(new[] { Id("cat"), Id("sat"), Id("on"), Id("the") }, tokenizer.Encode("cat\nsat\r\non\tthe"));
        Assert.Equal(new[] { Id("[CLS]") }, tokenizer.Prefix);
        Assert.Equal(new[] { Id("[SEP]") }, tokenizer.Suffix);
        Assert.Contains("lower-case", tokenizer.Description);

        var ids = Enumerable.Range(0, 40).Select(i => 5 + i % 7).ToList();
        var windows = CalibrationData.Windows(ids, new DataOptions { Samples = 3, SequenceLength = 8 }, tokenizer.Prefix, tokenizer.Suffix, "test");
        Assert.All(windows, w => Assert.Equal((Id("[CLS]"), Id("[SEP]"), 8), (w[0], w[^1], w.Length)));
    }

    [Fact]
    public void A_cased_wordpiece_vocabulary_keeps_case()
    {
        File.WriteAllLines(Path.Combine(_folder, "vocab.txt"), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "The", "the", "Emma"]);
        var tokenizer = TokenizerLoader.LoadFile(Path.Combine(_folder, "vocab.txt"));
        Assert.Equal(new[] { 5, 7, 6 }, tokenizer.Encode("The Emma the"));
        Assert.DoesNotContain("lower-case", tokenizer.Description);
    }

    [ArtifactFact(Artifact.MiniLm)]
    public void The_minilm_vocabulary_tokenizes_emma_as_bert_uncased_would()
    {
        string vocabPath = RequiredArtifact.MiniLmVocab;
        var vocab = File.ReadAllLines(vocabPath);
        var tokenizer = TokenizerLoader.WordPiece(vocabPath);
        var pieces = tokenizer.Encode("Emma Woodhouse, handsome, clever, and rich").Select(i => vocab[i]).ToArray();
        Assert.Equal(new[] { "emma", "wood", "##house", ",", "handsome", ",", "clever", ",", "and", "rich" }, pieces);
    }

    [Fact]
    public void No_tokenizer_next_to_the_model_is_a_clear_error()
    {
        var e = Assert.Throws<OnnxQuantException>(() => TokenizerLoader.Load(null, Path.Combine(_folder, "model.onnx")));
        Assert.Contains("no tokenizer found", e.Message);
        Assert.Contains("vocab.txt", e.Message);
        Assert.Contains("--tokenizer", e.Message);
    }

    [Fact]
    public void A_bpe_vocab_without_merges_is_a_clear_error()
    {
        File.WriteAllText(Path.Combine(_folder, "vocab.json"), "{\"a\": 0}");
        var e = Assert.Throws<OnnxQuantException>(() => TokenizerLoader.Load(_folder, "m.onnx"));
        Assert.Contains("merges.txt", e.Message);
    }
}
