namespace OnnxQuant.Fixtures;

/// <summary>The exporter style a fixture imitates (docs/architecture.md, "Exported graph patterns").</summary>
public enum FixtureFamily
{
    /// <summary>torch.onnx export of a Llama: decomposed RMSNorm, plain-op attention, SwiGLU.</summary>
    TorchLlama,
    /// <summary>onnxruntime-genai model builder style: (Skip)SimplifiedLayerNormalization, optional KV cache.</summary>
    GenAiLlama,
    /// <summary>Optimum's decoder export "with past": torch-style ops, RoPE from tables gathered by <c>position_ids</c>,
    /// <c>past_key_values.{i}.key/value</c> inputs and <c>present.{i}.key/value</c> outputs.</summary>
    OptimumLlama,
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

/// <summary>How a grouped-query attention repeats its key/value heads for the query heads (torch's <c>repeat_kv</c> as exporters write it).</summary>
public enum KvRepeat
{
    /// <summary><c>Unsqueeze -> Expand -> Reshape</c> (HF's <c>expand</c> + <c>reshape</c>).</summary>
    Expand,
    /// <summary><c>Unsqueeze -> Tile -> Reshape</c>.</summary>
    Tile,
    /// <summary><c>Unsqueeze -> Concat(copies) -> Reshape</c> (<c>torch.cat</c> of copies).</summary>
    Concat,
}

/// <summary>How <see cref="FixtureFamily.GenAiLlama"/> computes attention.</summary>
public enum GenAiAttention
{
    /// <summary>Plain ONNX ops (MatMul, Softmax...).</summary>
    PlainOps,
    /// <summary>Separate q/k/v MatMuls, com.microsoft <c>RotaryEmbedding</c> on q and k, then <c>GroupQueryAttention</c>.</summary>
    GroupQueryAttention,
    /// <summary>One packed QKV MatMul into <c>GroupQueryAttention</c>, which applies the rotary embedding itself (<c>do_rotary</c>).</summary>
    PackedGroupQueryAttention,
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
    /// <summary>Key/value heads (grouped-query attention when fewer than <see cref="Heads"/>); 0 = <see cref="Heads"/>.</summary>
    public int KvHeads { get; init; }
    /// <summary>How the Llama families repeat key/value heads when <see cref="KvHeads"/> &lt; <see cref="Heads"/>.</summary>
    public KvRepeat RepeatKv { get; init; } = KvRepeat.Expand;
    /// <summary>GenAiLlama's attention ops.</summary>
    public GenAiAttention Attention { get; init; } = GenAiAttention.PlainOps;
    public int Intermediate { get; init; } = 176;
    public int Vocab { get; init; } = 256;
    /// <summary>Rows of the learned position embedding (Bert, GenAiLlama); the longest past + sequence a run may use.</summary>
    public int MaxPositions { get; init; } = 128;
    public int Seed { get; init; }

    /// <summary>fp16 weights, activations, KV cache and outputs; ops that ORT's CPU provider has no fp16 kernel for are
    /// computed in fp32 between Casts (see <see cref="GraphBuilder"/>).</summary>
    public bool Fp16 { get; init; }

    /// <summary>With <see cref="Fp16"/>: TorchLlama's RMSNorms run wholly in fp32 (gamma stored fp32) between Casts, an fp32 island.</summary>
    public bool Fp32Norms { get; init; }

    /// <summary>How many hidden channels get outlier activations at every norm (0 = none).</summary>
    public int OutlierChannels { get; init; }

    /// <summary>The outlier channels' activation factor (real LLMs show ~50; docs/architecture.md, "Outlier twins").</summary>
    public float OutlierScale { get; init; } = 50f;

    /// <summary>TorchLlama: also take an <c>attention_mask</c> input [batch, sequence] (1 = token, 0 = padding).</summary>
    public bool AttentionMask { get; init; } = true;

    public RmsNormStyle RmsNorm { get; init; } = RmsNormStyle.Reciprocal;

    /// <summary>GenAiLlama: <c>past_key_values.{i}.key/value</c> inputs and <c>present.{i}.key/value</c> outputs.</summary>
    public bool KvCache { get; init; }

    /// <summary>TorchLlama: rotary position embedding from fixed cos/sin tables of this many rows, sliced by the
    /// sequence length as TorchScript exports write it (null: no RoPE). The longest sequence the model runs.</summary>
    public int? RopeRows { get; init; }

    public BertNormStyle BertNorm { get; init; } = BertNormStyle.LayerNormalization;

    public float Epsilon { get; init; } = 1e-5f;

    /// <summary>TorchLlama: linears moved into If/Loop bodies (<see cref="SubgraphShape"/>).</summary>
    public SubgraphShape Subgraphs { get; init; }

    /// <summary>TorchLlama: no embedding table of its own; the lookup is <c>Gather(Transpose(W_head))</c> of the LM head's weight.</summary>
    public bool TiedHeadTransposed { get; init; }

    public int HeadDim => Hidden / Heads;

    public int KvHeadCount => KvHeads == 0 ? Heads : KvHeads;

    /// <summary>True when the model takes past keys/values and returns present ones.</summary>
    public bool HasPast => KvCache || Family == FixtureFamily.OptimumLlama;

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
        Require(KvHeads >= 0 && Heads % KvHeadCount == 0, $"Heads ({Heads}) must be a multiple of KvHeads ({KvHeads})");
        Require(KvHeadCount == Heads || Family != FixtureFamily.Bert, "KvHeads applies to the Llama families only");
        Require(Attention == GenAiAttention.PlainOps || Family == FixtureFamily.GenAiLlama && KvCache && !Fp16,
            "GroupQueryAttention applies to GenAiLlama with KvCache in fp32");
        Require(!Fp32Norms || Fp16 && Family == FixtureFamily.TorchLlama, "Fp32Norms applies to fp16 TorchLlama only");
        Require(Subgraphs == SubgraphShape.None && !TiedHeadTransposed || Family == FixtureFamily.TorchLlama, "Subgraphs and TiedHeadTransposed apply to TorchLlama only");
        Require(RopeRows is null || (Family == FixtureFamily.TorchLlama && RopeRows >= 2 && HeadDim % 2 == 0), "RopeRows applies to TorchLlama with an even head size, and needs >= 2 rows");
    }
}
