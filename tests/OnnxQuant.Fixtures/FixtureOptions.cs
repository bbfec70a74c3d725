namespace OnnxQuant.Fixtures;

/// <summary>The exporter style a fixture imitates (docs/architecture.md, "Exported graph patterns").</summary>
public enum FixtureFamily
{
    /// <summary>torch.onnx export of a Llama: decomposed RMSNorm, plain-op attention, SwiGLU.</summary>
    TorchLlama,
    /// <summary>onnxruntime-genai model builder style: (Skip)SimplifiedLayerNormalization, optional KV cache.</summary>
    GenAiLlama,
    /// <summary>BERT encoder: LayerNormalization (or decomposed / SkipLayerNormalization), biased linears, GELU, pooler.</summary>
    Bert,
    /// <summary>A ViT-like encoder: the Bert encoder fed float pixel_values [batch, patches, Vocab] (no token ids, no text).</summary>
    Vit,
}

/// <summary>How the decomposed RMSNorm of <see cref="FixtureFamily.TorchLlama"/> divides by the root mean square.</summary>
public enum RmsNormStyle
{
    /// <summary><c>Sqrt -> Reciprocal -> Mul</c> (what torch exports for <c>x * torch.rsqrt(...)</c>).</summary>
    Reciprocal,
    /// <summary><c>Sqrt -> Div</c>.</summary>
    Div,
}

/// <summary>The layer norms of <see cref="FixtureFamily.Bert"/>.</summary>
public enum BertNormStyle
{
    /// <summary>ONNX <c>LayerNormalization</c> (opset 17) after an explicit residual <c>Add</c>.</summary>
    LayerNormalization,
    /// <summary><c>ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul(gamma), Add(beta)</c>.</summary>
    Decomposed,
    /// <summary>com.microsoft <c>SkipLayerNormalization</c> (input, skip, gamma, beta, bias) for the post-attention and
    /// post-MLP norms; the embedding norm stays <c>LayerNormalization</c>.</summary>
    SkipLayerNormalization,
}

/// <summary>
/// What to build. Sizes default to a tiny model that runs in milliseconds; weights come from <see cref="Seed"/> only,
/// so equal options give byte-identical models.
/// </summary>
public sealed record FixtureOptions
{
    public FixtureFamily Family { get; init; } = FixtureFamily.TorchLlama;
    public int Layers { get; init; } = 2;
    public int Hidden { get; init; } = 64;
    public int Heads { get; init; } = 4;
    public int Intermediate { get; init; } = 176;
    public int Vocab { get; init; } = 256;
    /// <summary>Rows of the learned position embedding (Bert, GenAiLlama); the longest past + sequence a run may use.</summary>
    public int MaxPositions { get; init; } = 128;
    public int Seed { get; init; }

    /// <summary>fp16 weights, activations, KV cache and outputs; ops that ORT's CPU provider has no fp16 kernel for are
    /// computed in fp32 between Casts (see <see cref="GraphBuilder"/>).</summary>
    public bool Fp16 { get; init; }

    /// <summary>How many hidden channels get outlier activations at every norm (0 = none).</summary>
    public int OutlierChannels { get; init; }

    /// <summary>The outlier channels' activation factor (real LLMs show ~50; docs/architecture.md, "Outlier twins").</summary>
    public float OutlierScale { get; init; } = 50f;

    /// <summary>TorchLlama: also take an <c>attention_mask</c> input [batch, sequence] (1 = token, 0 = padding).</summary>
    public bool AttentionMask { get; init; } = true;

    public RmsNormStyle RmsNorm { get; init; } = RmsNormStyle.Reciprocal;

    /// <summary>GenAiLlama: <c>past_key_values.{i}.key/value</c> inputs and <c>present.{i}.key/value</c> outputs.</summary>
    public bool KvCache { get; init; }

    public BertNormStyle BertNorm { get; init; } = BertNormStyle.LayerNormalization;

    public float Epsilon { get; init; } = 1e-5f;

    public int HeadDim => Hidden / Heads;

    /// <summary>The settings of the committed README model (models/tiny-llama).</summary>
    public static FixtureOptions TinyLlama => new()
    {
        Family = FixtureFamily.TorchLlama, Layers = 2, Hidden = 128, Heads = 4, Intermediate = 352, Vocab = 4096,
        OutlierChannels = 3, OutlierScale = 50f, Seed = 0,
    };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent setting.</summary>
    public void Check()
    {
        void Require(bool ok, string problem)
        {
            if (!ok) throw new ArgumentException($"fixture options: {problem}");
        }
        Require(Layers >= 1, $"Layers must be >= 1 (got {Layers})");
        Require(Hidden >= 2 && Heads >= 1 && Hidden % Heads == 0, $"Hidden ({Hidden}) must be a positive multiple of Heads ({Heads})");
        Require(Intermediate >= 1 && Vocab >= 2, $"Intermediate ({Intermediate}) and Vocab ({Vocab}) must be positive");
        Require(MaxPositions >= 1, $"MaxPositions must be >= 1 (got {MaxPositions})");
        Require(OutlierChannels >= 0 && OutlierChannels <= Hidden / 4, $"OutlierChannels must be in 0..Hidden/4 (got {OutlierChannels})");
        Require(OutlierChannels == 0 || OutlierScale > 1f, $"OutlierScale must be > 1 (got {OutlierScale})");
        Require(Epsilon > 0, $"Epsilon must be > 0 (got {Epsilon})");
        Require(!KvCache || Family == FixtureFamily.GenAiLlama, "KvCache applies to GenAiLlama only");
    }
}
