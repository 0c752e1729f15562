// Everything a plugin author needs: include this one header.
#pragma once

#include <alignkit/activation_checkpoint.hpp>
#include <alignkit/atomic_file.hpp>
#include <alignkit/chat_template.hpp>
#include <alignkit/dataset.hpp>
#include <alignkit/diagnostic.hpp>
#include <alignkit/example_layout.hpp>
#include <alignkit/generation.hpp>
#include <alignkit/jsonl_reader.hpp>
#include <alignkit/judge.hpp>
#include <alignkit/logprobs.hpp>
#include <alignkit/lora.hpp>
#include <alignkit/loss.hpp>
#include <alignkit/metrics.hpp>
#include <alignkit/model_loader.hpp>
#include <alignkit/online_method.hpp>
#include <alignkit/options.hpp>
#include <alignkit/plugin.hpp>
#include <alignkit/quantization.hpp>
#include <alignkit/recipe_section.hpp>
#include <alignkit/safetensors.hpp>
#include <alignkit/scheduler.hpp>
#include <alignkit/tokenizer.hpp>
#include <alignkit/torch_compat.hpp>
#include <alignkit/value_head.hpp>
#include <alignkit/version.hpp>
