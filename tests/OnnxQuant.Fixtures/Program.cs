using System.Globalization;
using OnnxQuant;
using OnnxQuant.Fixtures;
using OnnxQuant.IO;

// Regenerates fixture models, e.g. the committed README model:
//   dotnet run --project tests/OnnxQuant.Fixtures -- tiny-llama models/tiny-llama/model.onnx
const string Usage = """
    usage: OnnxQuant.Fixtures <family> <out.onnx> [options]
      family: torch-llama | genai-llama | optimum-llama | bert | tiny-llama (torch-llama with the models/tiny-llama settings)
      --layers N  --hidden N  --heads N  --intermediate N  --vocab N  --max-positions N  --rope-rows N  --seed N
      --outliers N  --outlier-scale X  --fp16  --fp32-norms  --kv-cache  --rms-div  --no-attention-mask
      --kv-heads N  --repeat-kv expand|tile|concat  --attention plainops|groupqueryattention|packedgroupqueryattention
      --subgraphs none|ifqueryprojection|ifdownprojection|loopqueryprojection  --tied-head-transposed
      --bert-norm layernorm|decomposed|skip  --external-data (weights in <out>.data; default: one self-contained file)
    """;

try
{
    if (args.Length < 2 || args[0].StartsWith("-", StringComparison.Ordinal))
        return Fail("expected a family and an output path");
    var options = args[0].ToLowerInvariant() switch
    {
        "torch-llama" or "torchllama" => new FixtureOptions { Family = FixtureFamily.TorchLlama },
        "genai-llama" or "genaillama" => new FixtureOptions { Family = FixtureFamily.GenAiLlama },
        "optimum-llama" or "optimumllama" => new FixtureOptions { Family = FixtureFamily.OptimumLlama },
        "bert" => new FixtureOptions { Family = FixtureFamily.Bert },
        "tiny-llama" => FixtureOptions.TinyLlama,
        var other => throw new ArgumentException($"unknown family '{other}'"),
    };
    string output = args[1];
    bool externalData = false;
    for (int i = 2; i < args.Length; i++)
    {
        string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
        int Int() => int.Parse(Next(), CultureInfo.InvariantCulture);
        options = args[i] switch
        {
            "--layers" => options with { Layers = Int() },
            "--hidden" => options with { Hidden = Int() },
            "--heads" => options with { Heads = Int() },
            "--intermediate" => options with { Intermediate = Int() },
            "--vocab" => options with { Vocab = Int() },
            "--rope-rows" => options with { RopeRows = Int() },
            "--max-positions" => options with { MaxPositions = Int() },
            "--seed" => options with { Seed = Int() },
            "--outliers" => options with { OutlierChannels = Int() },
            "--outlier-scale" => options with { OutlierScale = float.Parse(Next(), CultureInfo.InvariantCulture) },
            "--fp16" => options with { Fp16 = true },
            "--kv-cache" => options with { KvCache = true },
            "--kv-heads" => options with { KvHeads = Int() },
            "--repeat-kv" => options with { RepeatKv = Enum.Parse<KvRepeat>(Next(), ignoreCase: true) },
            "--attention" => options with { Attention = Enum.Parse<GenAiAttention>(Next(), ignoreCase: true) },
            "--fp32-norms" => options with { Fp32Norms = true },
            "--rms-div" => options with { RmsNorm = RmsNormStyle.Div },
            "--no-attention-mask" => options with { AttentionMask = false },
            "--subgraphs" => options with { Subgraphs = Enum.Parse<SubgraphShape>(Next(), ignoreCase: true) },
            "--tied-head-transposed" => options with { TiedHeadTransposed = true },
            "--bert-norm" => options with
            {
                BertNorm = Next() switch
                {
                    "layernorm" => BertNormStyle.LayerNormalization,
                    "decomposed" => BertNormStyle.Decomposed,
                    "skip" => BertNormStyle.SkipLayerNormalization,
                    var n => throw new ArgumentException($"unknown --bert-norm '{n}'"),
                },
            },
            "--external-data" => options,
            var flag => throw new ArgumentException($"unknown option '{flag}'"),
        };
        externalData |= args[i] == "--external-data";
    }

    string full = Path.GetFullPath(output);
    var saveOptions = externalData ? null : new SaveOptions { ExternalThreshold = long.MaxValue };
    FixtureModels.Save(options, Path.GetDirectoryName(full)!, Path.GetFileName(full), saveOptions);
    var description = FixtureModels.Describe(options);
    Console.WriteLine($"wrote {output} ({new FileInfo(full).Length} bytes)");
    Console.WriteLine(description.Summary());
    foreach (var site in description.Sites)
        Console.WriteLine($"  {site.Activation} -> {string.Join(", ", site.Consumers)}");
    return 0;
}
catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
{
    return Fail(e.Message);
}
catch (OnnxQuantException e)
{
    Console.Error.WriteLine(e.Message);
    return (int)e.ExitCode;
}

static int Fail(string problem)
{
    Console.Error.WriteLine($"error: {problem}");
    Console.Error.WriteLine(Usage);
    return 2;
}
