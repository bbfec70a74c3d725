using Onnx;
using Microsoft.ML.OnnxRuntime;
using OnnxQuant.Fixtures;
using OnnxQuant.Tests.Cli;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.Eval;

/// <summary>
/// Small models and texts for the eval tests: TorchLlama fixtures with the Austen LM's 4096-token vocabulary (so its
/// committed vocab.json/merges.txt tokenize for them), a BERT fixture with a letters-only WordPiece vocab written beside
/// it, and an excerpt of Persuasion. Plus the test's own reference arithmetic (double precision, written out plainly).
/// </summary>
internal static class EvalTestData
{
    public static string AustenTokenizer => Path.Combine(CliHarness.RepoRoot(), "models", "austen-lm");

    public static FixtureOptions Lm(int seed) => new()
    {
        Family = FixtureFamily.TorchLlama, Layers = 2, Hidden = 64, Heads = 4, Intermediate = 176, Vocab = 4096, Seed = seed,
    };

/// <summary>The eval LM with its logits output renamed to "output" and, optionally, its vocabulary dimension made symbolic.</summary>
    public static ModelProto RenamedLm(bool symbolicVocab)
    {
        var proto = FixtureModels.Build(EvalTestData.Lm(0));
        var output = proto.Graph.Output.Single(o => o.Name == "logits");
        foreach (var node in proto.Graph.Node)
            for (int i = 0; i < node.Output.Count; i++)
                if (node.Output[i] == "logits")
                    node.Output[i] = "output";
        output.Name = "output";
        if (symbolicVocab)
            output.Type.TensorType.Shape.Dim[^1] = new TensorShapeProto.Types.Dimension { DimParam = "vocab" };
        return proto;
    }

    public static FixtureOptions Bert(int seed) => new() { Family = FixtureFamily.Bert, Layers = 2, Hidden = 64, Heads = 4, Intermediate = 128, Vocab = 256, Seed = seed };

    /// <summary>The first <paramref name="chars"/> characters of Persuasion, written to <c>text.txt</c> in the folder.</summary>
    public static string PersuasionExcerpt(TempFolder folder, int chars)
    {
        string text = File.ReadAllText(Path.Combine(CliHarness.RepoRoot(), "models", "text", "persuasion.txt"));
        string path = folder.File("text.txt");
        File.WriteAllText(path, text[..chars]);
        return path;
    }

    /// <summary>
    /// A lower-case WordPiece vocabulary of 256 entries: specials, letters, digits and punctuation, each also as a
    /// "##" continuation, so any lower-cased English text tokenizes without [UNK] for ordinary words.
    /// </summary>
    public static void WriteLetterVocab(string folder)
    {
        var pieces = new List<string> { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };
        var symbols = "abcdefghijklmnopqrstuvwxyz0123456789".Select(c => c.ToString()).ToList();
        pieces.AddRange(symbols);
        pieces.AddRange(symbols.Select(s => "##" + s));
        pieces.AddRange(".,;:!?'\"-()&*".Select(c => c.ToString()));
        foreach (var word in new[] { "the", "and", "of", "to", "in", "was", "her", "she", "he", "it", "that", "had", "be", "not", "his", "with", "for", "as", "you" })
            pieces.Add(word);
        for (int i = 0; pieces.Count < 256; i++)
            pieces.Add($"[unused{i}]");
        File.WriteAllLines(Path.Combine(folder, "vocab.txt"), pieces.Distinct());
    }

    public static OrtRunner Runner(string model) => new(model, GraphOptimizationLevel.ORT_ENABLE_ALL);

    public static float[] Logits(OrtRunner runner, int[] ids, string output = "logits")
    {
        var feeds = new Dictionary<string, OrtFeed> { ["input_ids"] = OrtFeed.Int64(ids.Select(i => (long)i).ToArray(), 1, ids.Length) };
        foreach (var name in runner.InputNames.Where(n => n != "input_ids"))
            feeds[name] = OrtFeed.Int64(new long[ids.Length].Select(_ => name == "token_type_ids" ? 0L : 1L).ToArray(), 1, ids.Length);
        return runner.Run(feeds, [output])[output].Values;
    }

    /// <summary>-log softmax(row)[target], in double.</summary>
    public static double Loss(ReadOnlySpan<float> row, int target)
    {
        double max = double.NegativeInfinity;
        foreach (var v in row) max = Math.Max(max, v);
        double sum = 0;
        foreach (var v in row) sum += Math.Exp(v - max);
        return -(row[target] - max - Math.Log(sum));
    }

    public static int ArgMax(ReadOnlySpan<float> row)
    {
        int best = 0;
        for (int i = 1; i < row.Length; i++)
            if (row[i] > row[best]) best = i;
        return best;
    }

    public static double[] MeanPool(float[] hidden, int tokens)
    {
        int width = hidden.Length / tokens;
        var pooled = new double[width];
        for (int t = 0; t < tokens; t++)
            for (int c = 0; c < width; c++)
                pooled[c] += hidden[t * width + c] / (double)tokens;
        return pooled;
    }

    public static double Cosine(double[] a, double[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += a[i] * b[i];
            na += a[i] * a[i];
            nb += b[i] * b[i];
        }
        return dot / Math.Sqrt(na * nb);
    }
}
